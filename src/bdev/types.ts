// The bdev interface: what every module implements and what every submitter sees.
import { BdevIoMisuseError } from '../errors.js';
import type { Bdev } from './bdev.js';

export const IoType = {
  Read: 0,
  Write: 1,
  Flush: 2,
  Unmap: 3,
  WriteZeroes: 4,
  SeekData: 5,
  SeekHole: 6,
  Reset: 7,
} as const;
export type IoType = (typeof IoType)[keyof typeof IoType];

/** SPDK's JSON names for the I/O types, as bdev_get_bdevs reports them. */
export const IO_TYPE_NAME: Record<IoType, string> = {
  0: 'read',
  1: 'write',
  2: 'flush',
  3: 'unmap',
  4: 'write_zeroes',
  5: 'seek_data',
  6: 'seek_hole',
  7: 'reset',
};

/**
 * Command flags of an I/O, as one word: every layer passes the word on whole, so no flag is lost
 * in a copy. A bdev declares the flags it honours (BdevDriver.ioFlags); submitting one it did
 * not declare is a caller bug.
 */
export const IoFlag = {
  /** Durable before completion (WRITE, WRITE_ZEROES, UNMAP; accepted and meaningless elsewhere). */
  Fua: 1,
  /** WRITE_ZEROES: the range must stay allocated (no hole punched). */
  NoHole: 2,
  /** WRITE_ZEROES: fail with -ENOTSUP rather than zero slowly (by writing zeroes). */
  FastZero: 4,
} as const;
export type IoFlag = (typeof IoFlag)[keyof typeof IoFlag];

/** Every IoFlag: what a bdev that honours them all declares. */
export const ALL_IO_FLAGS = IoFlag.Fua | IoFlag.NoHole | IoFlag.FastZero;

/** Where Bdev.submit sends an I/O's completion: the bdev it was submitted to. */
export type Settle = (io: BdevIo, status: number) => void;
/** Internal (not exported by the package): the key of BdevIo's Settle. */
export const kSettle = Symbol('aionbd.bdevIo.settle');

/**
 * One I/O. Pooled and reused by its submitter; the bdev layer never allocates one.
 * Offsets and lengths are in bytes and must be multiples of the bdev's block size.
 */
export class BdevIo {
  type: IoType = IoType.Read;
  offset = 0;
  length = 0;
  /** IoFlag bits. */
  flags = 0;
  /** Aligned buffer of at least `length` bytes: READ fills it, WRITE reads it. */
  buf: Buffer | null = null;
  /** 0, -errno, or (SEEK_*) the offset found. */
  result = 0;
  /** Owned by the bdev layer from submit until done() is called. */
  pending = false;
  /** The module has completed it (done() may still be deferred): a second completion is a bug. */
  completed = false;
  /** performance.now() at submit, for latency statistics. */
  startMs = 0;
  /** Set by Bdev.submit each time: a bound function of that bdev, so completing allocates nothing. */
  [kSettle]: Settle | null = null;

  /** @param done the submitter's callback: runs exactly once per submit, never from inside submit(). */
  constructor(public done: (io: BdevIo) => void) {}

  /**
   * Module use: the I/O is finished with `status` (0, -errno, or the offset a SEEK found).
   * Exactly once per submit, at any time (the bdev layer defers a completion made inside
   * submit()); a second call throws BdevIoMisuseError.
   */
  complete(status: number): void {
    const settle = this[kSettle];
    if (settle === null) throw new BdevIoMisuseError('(none)', 'completed without having been submitted');
    settle(this, status);
  }
}

/** What a module's device queue (AIO, RBD) reports per I/O: the raw result, which the module turns into io.complete(). */
export type DeviceDone = (io: BdevIo, result: number) => void;

/** One entry of a save_config "config" array: the RPC that re-creates something. */
export interface ConfigEntry {
  method: string;
  params?: Record<string, unknown>;
}

/** What a module implements: SPDK's function table, in TypeScript. */
export interface BdevDriver {
  readonly module: string;
  /** Starts io; the module calls io.complete(status) exactly once, now or later. */
  submit(io: BdevIo): void;
  supports(type: IoType): boolean;
  /**
   * The IoFlag bits this module honours, fixed at creation. A virtual bdev declares what its
   * base (every base) declares. FastZero means: a WRITE_ZEROES that cannot be fast fails at
   * once with -ENOTSUP. Whoever supports WRITE_ZEROES must honour NoHole (NBD requires it).
   */
  readonly ioFlags: number;
  /** Called once, at the end of the Bdev constructor, with the bdev this module serves. */
  attach?(bdev: Bdev): void;
  /** Called after the last completion; releases every fd and context. */
  destruct(): Promise<void>;
  /** driver_specific in bdev_get_bdevs. */
  info(): Record<string, unknown>;
  /** The RPC that re-creates this bdev (save_config); null when another bdev's entry covers it. */
  config?(bdev: Bdev): ConfigEntry | null;
  /**
   * The bdev is closing: complete whatever the module holds back on its own (injected
   * "pending" I/O), so that close() does not wait forever.
   */
  abort?(): void;
  /**
   * Allocation of [offset, offset + length) (whole blocks), consecutive extents from offset;
   * the answer may stop short of the end (the caller asks again). Absent: the bdev layer asks
   * SEEK_DATA/SEEK_HOLE when the module has them, else answers "all data". See block_status.ts.
   */
  blockStatus?(offset: number, length: number): Promise<BlockExtent[]>;
  /** The depths in blockStatus() answers say which layer holds the data (lvol snapshots and clones). */
  knowsDepth?(): boolean;
}

/** BlockExtent flags: the range is not allocated (a write there may need space). */
export const BLOCK_HOLE = 1;
/** BlockExtent flags: the range reads as zeroes. */
export const BLOCK_ZERO = 2;

/** One extent of a block status answer. */
export interface BlockExtent {
  length: number;
  /** BLOCK_HOLE | BLOCK_ZERO, or 0 for data. HOLE is only ever set together with ZERO here. */
  flags: number;
  /** 0: allocated nowhere; 1: in this bdev; 2 and up: in a backing snapshot, that many layers down. */
  depth: number;
}

export function newIo(done: (io: BdevIo) => void): BdevIo {
  return new BdevIo(done);
}
