// The addon's RBD part (native/rbd_*.cc), typed. Present in every build: without librbd's
// headers at build time it says only why not (available: false, reason).
import type { SlotLayout } from './native.js';

/** Errors from the addon: an OsError (code, errno < 0, syscall), or ENOLIBRBD when librbd cannot be opened. */
export type RbdCallback<T> = (err: (Error & { errno?: number; code?: string; syscall?: string }) | null, value?: T) => void;

export interface RbdConnectOptions {
  userId?: string;
  confFile?: string;
  keyFile?: string;
  /** Read Ceph's default configuration search path (when neither a file nor params are given). */
  readDefaultConf?: boolean;
  /** [key, value, Ceph's own default]: set only where the configuration left the option at Ceph's default. */
  defaults: [string, string, string][];
  /** Set last: they win over the file. */
  params: [string, string][];
}

export interface RbdClusterHandle {
  connect(opts: RbdConnectOptions, cb: RbdCallback<undefined>): void;
  /** After the last image on it closed. */
  shutdown(cb: RbdCallback<undefined>): void;
  fsid(): string | null;
}

export interface RbdImageHandle {
  readonly table: ArrayBuffer;
  readonly layout: SlotLayout;
  readonly inflight: number;
  open(pool: string, image: string, readonly: boolean, cb: RbdCallback<{ size: number; features: number }>): void;
  /** Starts sq[0..n); every slot completes through onComplete, never inside submit(). */
  submit(n: number): number;
  /** Allocated extents of [offset, offset+length) as offset/length pairs, whole objects at a time. */
  diff(offset: number, length: number, cb: RbdCallback<{ extents: Float64Array; truncated: boolean }>): void;
  resize(bytes: number, cb: RbdCallback<undefined>): void;
  size(cb: RbdCallback<number>): void;
  /** Only with nothing in flight and no job running. */
  close(cb: RbdCallback<undefined>): void;
}

/**
 * The op column and rwFlags bits (FUA for WRITE, NO_HOLE for WRITE_ZEROES) of an RBD image's slot
 * table: native().constants.rbd (native/rbd_ops.h).
 */
export interface RbdOps {
  READ: number;
  WRITE: number;
  FLUSH: number;
  DISCARD: number;
  WRITE_ZEROES: number;
  FUA: number;
  NO_HOLE: number;
}

export type RbdNative =
  | { available: false; reason: string }
  | {
      available: true;
      RbdCluster: new () => RbdClusterHandle;
      RbdImage: new (
        cluster: RbdClusterHandle,
        depth: number,
        buffers: (Uint8Array | null)[],
        onComplete: (n: number) => void,
        onUpdate: () => void,
      ) => RbdImageHandle;
    };
