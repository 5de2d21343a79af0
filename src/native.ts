// Loads the addon once and types it. An explicit path (AIONBD_NATIVE) wins, for tests of a
// debug build; otherwise build/Release, as node-gyp leaves it after `npm install`.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { NativeAddonError } from './errors.js';
import type { RbdNative } from './bdev/rbd/native.js';

/** Byte offsets of the slot table's arrays; see native/slot_layout.h. */
export interface SlotLayout {
  op: number; rwFlags: number; len: number; fd: number; sq: number; cqSlot: number; offset: number; cqRes: number; size: number;
}

/** Typed-array views of a slot table's columns (the AIO engine's and an RBD image's). */
export interface SlotViews {
  op: Uint32Array; rwFlags: Uint32Array; len: Uint32Array; fd: Uint32Array; sq: Uint32Array; cqSlot: Uint32Array;
  offset: Float64Array; cqRes: Float64Array;
}

/** Views of the first n slots of `table`, laid out as `l` says. */
export function slotViews(table: ArrayBuffer, l: SlotLayout, n: number): SlotViews {
  return {
    op: new Uint32Array(table, l.op, n), rwFlags: new Uint32Array(table, l.rwFlags, n), len: new Uint32Array(table, l.len, n),
    fd: new Uint32Array(table, l.fd, n), sq: new Uint32Array(table, l.sq, n), cqSlot: new Uint32Array(table, l.cqSlot, n),
    offset: new Float64Array(table, l.offset, n), cqRes: new Float64Array(table, l.cqRes, n),
  };
}

/** The AIO engine of this Node environment, shared by its AIO bdevs; see native/aio_engine.h. */
export interface AioEngineHandle {
  /** The slot table; replaced (with `layout`) by grow(): views must be made again after it. */
  readonly table: ArrayBuffer;
  readonly layout: SlotLayout;
  readonly inflight: number;
  readonly userRing: boolean;
  /** Slots: the sum of the kernel contexts' events. */
  readonly capacity: number;
  /** Kernel AIO contexts held. */
  readonly contexts: number;
  /** Submits sq[0..n): returns how many the kernel took, 0 if its rings are full, -errno if it refused the first. */
  submit(n: number): number;
  /** Adds a kernel context of `events` events and as many slots; throws an OsError (syscall io_setup). */
  grow(events: number): void;
  /** Destroys every context; only when nothing is in flight. */
  close(): void;
}

/** Events SockIo reports (bits); mirrors native/sock_io.cc. */
export const SockEvent = { Readable: 1, Writable: 2, Error: 4 } as const;

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

/** Codes of the operations fileOp() runs on the thread pool; mirrors FileOp in native/file_ops.cc. */
export const FileOp = {
  PunchHole: 0, ZeroRange: 1, Discard: 2, ZeroOut: 3, Fdatasync: 4, SeekData: 5, SeekHole: 6, WriteZeroes: 7, ZeroRangeFast: 8, PunchOrZero: 9, Allocate: 10,
} as const;
export type FileOp = (typeof FileOp)[keyof typeof FileOp];

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
  /** LINK_DEAD and other multicast messages of the family; cmd 0: events were lost. */
  Events: new (familyId: number, group: number, onEvent: (cmd: number, index: number) => void) => { close(): void };
  /** The ioctl path on a thread of its own: onEvent(0, errno) once set up, onEvent(1, errno) when NBD_DO_IT returned. */
  ioctlStart(path: string, p: { sizeBytes: number; blockSize: number; flags: number; timeout: number }, fds: number[], onEvent: (phase: number, errno: number) => void): void;
  ioctlDisconnect(path: string): Promise<void>;
  /** NBD_SET_SIZE on a device started with the ioctls. */
  ioctlSetSize(path: string, sizeBytes: number): Promise<void>;
  constants: { CMD_LINK_DEAD: number; CFLAG_DESTROY_ON_DISCONNECT: number; CFLAG_DISCONNECT_ON_CLOSE: number };
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
  AioEngine: new (events: number, buffers: (Uint8Array | null)[], onComplete: (n: number) => void) => AioEngineHandle;
  SockIo: new (fd: number, bufs: (Uint8Array | null)[], offsets: Uint32Array, lengths: Uint32Array, onEvent: (events: number) => void) => SockIoHandle;
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
  slotLayout(slots: number): SlotLayout;
  nbd: NbdNative;
  /** The RBD bdev's classes, or why this build has none. */
  rbd: RbdNative;
  constants: { IOCB_CMD_PREAD: number; IOCB_CMD_PWRITE: number; IOCB_CMD_FSYNC: number; IOCB_CMD_FDSYNC: number; RWF_DSYNC: number };
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
    try {
      cached = require(c) as NativeAddon;
      return cached;
    } catch (err) {
      errors.push(`${c}: ${(err as Error).message}`);
    }
  }
  throw new NativeAddonError(errors);
}

/** The same layout as native/slot_layout.h computes; a unit test keeps the two equal. */
export function slotLayout(slots: number): SlotLayout {
  const offset = 24 * slots;
  return {
    op: 0, rwFlags: 4 * slots, len: 8 * slots, fd: 12 * slots, sq: 16 * slots, cqSlot: 20 * slots,
    offset, cqRes: offset + 8 * slots, size: offset + 16 * slots,
  };
}
