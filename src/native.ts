// Loads the addon once and types it. An explicit path (AIONBD_NATIVE) wins, for tests of a
// debug build; otherwise build/Release, as node-gyp leaves it after `npm install`.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { NativeAddonError } from './errors.js';
import type { RbdNative, RbdOps } from './native_rbd.js';

/** The slot table's columns (AIONBD_SLOT_COLUMNS in native/slot_layout.h). */
export type SlotColumn = 'op' | 'rwFlags' | 'len' | 'fd' | 'sq' | 'cqSlot' | 'offset' | 'cqRes';

/** Byte offset of each column of one slot table, and its size, as the addon computed them. */
export type SlotLayout = Record<SlotColumn | 'size', number>;

/** Typed-array views of a slot table's columns (the AIO engine's and an RBD image's). */
export interface SlotViews {
  op: Uint32Array;
  rwFlags: Uint32Array;
  len: Uint32Array;
  fd: Uint32Array;
  sq: Uint32Array;
  cqSlot: Uint32Array;
  offset: Float64Array;
  cqRes: Float64Array;
}

/** Views of the first n slots of `table`, laid out as `l` says. */
export function slotViews(table: ArrayBuffer, l: SlotLayout, n: number): SlotViews {
  return {
    op: new Uint32Array(table, l.op, n),
    rwFlags: new Uint32Array(table, l.rwFlags, n),
    len: new Uint32Array(table, l.len, n),
    fd: new Uint32Array(table, l.fd, n),
    sq: new Uint32Array(table, l.sq, n),
    cqSlot: new Uint32Array(table, l.cqSlot, n),
    offset: new Float64Array(table, l.offset, n),
    cqRes: new Float64Array(table, l.cqRes, n),
  };
}

/**
 * The AIO engine (or the io_uring engine) of this Node environment, shared by its AIO (uring)
 * bdevs; see native/aio_engine.h and native/uring_engine.h: one interface and slot table.
 */
export interface AioEngineHandle {
  /** The slot table; replaced (with `layout`) by grow(): views must be made again after it. */
  readonly table: ArrayBuffer;
  readonly layout: SlotLayout;
  readonly inflight: number;
  readonly userRing: boolean;
  /** Slots: the sum of the kernel contexts' events (rings' entries). */
  readonly capacity: number;
  /** Kernel AIO contexts (io_uring rings) held. */
  readonly contexts: number;
  /** Lone requests whose completion the loop found by spinning on the rings (AIONBD_SPIN_US). */
  readonly spins: number;
  /** Spins started, whether or not they found a completion. */
  readonly spinTries: number;
  /** Submits sq[0..n): returns how many the kernel took, 0 if its rings are full, -errno if it refused the first. */
  submit(n: number): number;
  /** Adds a kernel context of `events` events (a ring) and as many slots; throws an OsError (syscall io_setup, io_uring_setup). */
  grow(events: number): void;
  /** Destroys every context; only when nothing is in flight. */
  close(): void;
}

const SOCK_EVENTS = ['Readable', 'Writable', 'Error'] as const;

/** Bits of what SockIo.poll() asks for and onEvent reports (SockEvent in native/sock_io.h). */
export const SockEvent: Readonly<Record<(typeof SOCK_EVENTS)[number], number>> = addonTable('sockEvent', SOCK_EVENTS);

/** Socket I/O of one connection on a dup of its fd; see native/sock_io.h. */
export interface SockIoHandle {
  /** One recv into buf[offset..offset+length): bytes read, 0 at end of stream, or -errno (-EAGAIN: nothing now). */
  read(buf: Uint8Array, offset: number, length: number): number;
  /** One recvmsg filling a[aOff..aOff+aLen) first, then b[bOff..bOff+bLen): total read, 0 at end of stream, or -errno. */
  readv(a: Uint8Array, aOff: number, aLen: number, b: Uint8Array, bOff: number, bLen: number): number;
  /** One sendmsg of queue entries head.. (modulo the ring), at most count: bytes sent or -errno. */
  writev(head: number, count: number): number;
  /** Replaces the write ring (after it grew). */
  setQueue(bufs: (Uint8Array | null)[], offsets: Uint32Array, lengths: Uint32Array): void;
  /** What to be told about: SockEvent.Readable | SockEvent.Writable, or 0. */
  poll(mask: number): void;
  /** shutdown(SHUT_WR): 0 or -errno. */
  shutdown(): number;
  /** Stops polling and closes the dup. Idempotent. */
  close(): void;
}

export interface FileInfo {
  type: 'file' | 'block' | 'other';
  size: number;
  logicalBlockSize: number;
  physicalBlockSize: number;
  dioMemAlign: number;
  dioOffsetAlign: number;
  direct: boolean;
  fsBlockSize: number;
}

/** What openFile() found: fd is -1 (nothing left open) unless kind is 'file' or 'block'. */
export interface OpenedFile {
  fd: number;
  kind: 'file' | 'block' | 'character device' | 'fifo' | 'socket' | 'directory' | 'symlink' | 'other';
  nlink: number;
  /** O_DIRECT is on (asked for, and the file system took it). */
  direct: boolean;
  /** How the name was resolved: by plain path, openat2 beneath the root, or the O_NOFOLLOW walk. */
  resolve: 'path' | 'openat2' | 'walk';
}

export interface OpenFileOptions {
  /** Resolve `path` (relative) beneath this directory only; see native/open_file.cc. */
  root?: string | undefined;
  write: boolean;
  direct: boolean;
  /** Use the O_NOFOLLOW walk even where openat2 exists (tests of the fallback). */
  walk?: boolean | undefined;
}

const FILE_OPS = [
  'PunchHole',
  'ZeroRange',
  'Discard',
  'ZeroOut',
  'Fdatasync',
  'SeekData',
  'SeekHole',
  'WriteZeroes',
  'ZeroRangeFast',
  'PunchOrZero',
  'Allocate',
] as const;

/** Codes of the operations fileOp() runs on the thread pool (FileOp in native/file_ops.h). */
export const FileOp: Readonly<Record<(typeof FILE_OPS)[number], number>> = addonTable('fileOp', FILE_OPS);
export type FileOp = number;

/** Kernel NBD attach (native/nbd_attach.cc). Promises reject with an OsError (errno < 0). */
export interface NbdNative {
  /** AF_UNIX stream socketpair, close-on-exec: one end for the kernel, one served by us. */
  socketpair(): [number, number];
  /** The generic-netlink family; rejects with ENOENT when the kernel has none. */
  family(): Promise<{ id: number; mcastGroup: number }>;
  /** NBD_CMD_CONNECT: resolves with the device index the kernel used. */
  connect(p: NbdConnectParams): Promise<number>;
  disconnect(index: number): Promise<void>;
  reconfigure(index: number, fds: number[], backendId: string): Promise<void>;
  /** NBD_CMD_RECONFIGURE with a new size: a started device takes its new capacity. */
  resize(index: number, sizeBytes: number, backendId: string): Promise<void>;
  status(index?: number): Promise<{ index: number; connected: boolean }[]>;
  /**
   * LINK_DEAD and other multicast messages of the family; cmd constants.nbd.EVENTS_LOST: events
   * were lost. index constants.nbd.NO_INDEX: the message named no device.
   */
  Events: new (
    familyId: number,
    group: number,
    onEvent: (cmd: number, index: number) => void,
  ) => { close(): void };
  /** The ioctl path on a thread of its own: onEvent(0, errno) once set up, onEvent(1, errno) when NBD_DO_IT returned. */
  ioctlStart(
    path: string,
    p: { sizeBytes: number; blockSize: number; flags: number; timeout: number },
    fds: number[],
    onEvent: (phase: number, errno: number) => void,
  ): void;
  ioctlDisconnect(path: string): Promise<void>;
  /** NBD_SET_SIZE on a device started with the ioctls. */
  ioctlSetSize(path: string, sizeBytes: number): Promise<void>;
}

export interface NbdConnectParams {
  /** Omitted: the kernel picks a free device. */
  index?: number;
  sizeBytes: number;
  blockSize: number;
  serverFlags: number;
  clientFlags?: number;
  timeout?: number;
  deadConnTimeout?: number;
  backendId?: string;
  fds: number[];
}

/** RLIMIT_NOFILE (-1: unlimited); see native/limits.cc. */
export interface FileLimit {
  soft: number;
  hard: number;
  /** The soft limit before a raise was asked for. */
  before: number;
  /** errno of a raise the kernel refused, else 0. */
  error: number;
}

export interface NativeAddon {
  /** Sets up the first context of `events` events; throws an OsError (syscall io_setup) when the kernel refuses it. */
  AioEngine: new (
    events: number,
    buffers: (Uint8Array | null)[],
    onComplete: (n: number) => void,
  ) => AioEngineHandle;
  /** Sets up the first ring of `entries`; throws an OsError (syscall io_uring_setup) when io_uring is missing or refused. */
  UringEngine: new (
    entries: number,
    buffers: (Uint8Array | null)[],
    onComplete: (n: number) => void,
  ) => AioEngineHandle;
  SockIo: new (
    fd: number,
    bufs: (Uint8Array | null)[],
    offsets: Uint32Array,
    lengths: Uint32Array,
    onEvent: (events: number) => void,
  ) => SockIoHandle;
  allocAligned(size: number, alignment: number): ArrayBuffer;
  /** Frees an allocAligned buffer now (detaches it); only for memory no I/O refers to. */
  releaseAligned(buf: ArrayBuffer): void;
  fileOp(op: FileOp, fd: number, offset: number, length: number, cb: (result: number) => void): void;
  fileInfo(fd: number): FileInfo;
  /** SO_PEERCRED of a connected unix socket; throws an OsError. */
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  /** RLIMIT_NOFILE; with raise, its soft limit is first set to the hard one. */
  fileLimit(raise: boolean): FileLimit;
  /** Asks V8 for a memory-reducing collection (moderate memory pressure); returns at once. */
  reduceHeap(): void;
  /** malloc_trim(0): gives the C heap's free pages back to the system; true if any were. */
  trimMalloc(): boolean;
  /** Opens without blocking and judges the fd; throws an OsError (code, errno, syscall). */
  openFile(path: string, opts: OpenFileOptions): OpenedFile;
  /** The layout of a table of `slots` slots (tests of the views built from it). */
  slotLayout(slots: number): SlotLayout;
  nbd: NbdNative;
  /** The RBD bdev's classes, or why this build has none. */
  rbd: RbdNative;
  constants: NativeConstants;
}

/**
 * Every number JS and the native code share, as the addon exports it (native/constants.cc):
 * defined once on the native side, from the kernel's headers or the addon's own, never retyped
 * here. Read them from native().constants, or through SockEvent and FileOp below.
 */
export interface NativeConstants {
  /** The slot table's op (IOCB_CMD_*) and rwFlags (RWF_*) for Linux AIO; the most events of one AIO context (a bdev's largest queue depth). */
  aio: {
    IOCB_CMD_PREAD: number;
    IOCB_CMD_PWRITE: number;
    IOCB_CMD_FSYNC: number;
    IOCB_CMD_FDSYNC: number;
    RWF_DSYNC: number;
    MAX_CONTEXT_EVENTS: number;
  };
  /** The slot table's op and rwFlags for io_uring (FLUSH: OP_FSYNC with FSYNC_DATASYNC as its flags); the most entries of one ring. */
  uring: {
    OP_READ: number;
    OP_WRITE: number;
    OP_FSYNC: number;
    FSYNC_DATASYNC: number;
    RWF_DSYNC: number;
    MAX_RING_ENTRIES: number;
  };
  fileOp: Record<(typeof FILE_OPS)[number], number>;
  sockEvent: Record<(typeof SOCK_EVENTS)[number], number>;
  /** Bytes of one element of each column, in table order: 4 is viewed as Uint32Array, 8 as Float64Array. */
  slot: { columns: Record<SlotColumn, number> };
  /** Generic-netlink nbd values, and what the Events listener reports when it has no message to pass on. */
  nbd: {
    CMD_LINK_DEAD: number;
    CFLAG_DESTROY_ON_DISCONNECT: number;
    CFLAG_DISCONNECT_ON_CLOSE: number;
    EVENTS_LOST: number;
    NO_INDEX: number;
  };
  /** The op column and rwFlags bit of an RBD image's slot table (in every build). */
  rbd: RbdOps;
}

let cached: NativeAddon | undefined;

export function native(): NativeAddon {
  if (cached !== undefined) return cached;
  const require = createRequire(import.meta.url);
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const candidates = [process.env['AIONBD_NATIVE'], path.join(root, 'build', 'Release', 'aionbd.node')];
  const errors: string[] = [];
  for (const c of candidates) {
    if (c === undefined || c === '') continue;
    let addon: NativeAddon;
    try {
      addon = require(c) as NativeAddon;
    } catch (err) {
      errors.push(`${c}: ${(err as Error).message}`);
      continue;
    }
    // A build older than these sources (build/ copied from elsewhere, or not rebuilt after a
    // pull) lacks what they read: say so once here rather than fail later on an undefined.
    if (typeof addon.constants !== 'object' || typeof addon.constants.fileOp !== 'object') {
      errors.push(`${c}: built from older sources than this aionbd (no constants.fileOp): rebuild it with "npm run build"`);
      continue;
    }
    cached = addon;
    return cached;
  }
  throw new NativeAddonError(errors);
}

/**
 * constants[group] of the addon as an object that modules can hold from import on, without
 * loading the addon then (a CLI run that never needs it must not fail on it): the first read of
 * any name loads it and turns every name into a plain, frozen value.
 */
function addonTable<G extends 'fileOp' | 'sockEvent', N extends keyof NativeConstants[G] & string>(
  group: G,
  names: readonly N[],
): Readonly<Record<N, number>> {
  const table = {} as Record<N, number>;
  const settle = (): void => {
    const values = native().constants[group];
    for (const n of names) {
      const v = values[n];
      if (typeof v !== 'number')
        throw new NativeAddonError([`the addon's constants.${group} has no ${n}: rebuild it with "npm run build"`]);
      Object.defineProperty(table, n, { value: v, enumerable: true, writable: false, configurable: false });
    }
    Object.freeze(table);
  };
  for (const n of names) {
    Object.defineProperty(table, n, {
      enumerable: true,
      configurable: true,
      get: (): number => {
        settle();
        return table[n];
      },
    });
  }
  return table;
}
