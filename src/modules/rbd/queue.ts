// Feeds BdevIos to one native RBD image (native/rbd_image.cc): the I/O queued until the
// submitter's next kick (or the end of the macrotask; see submit_kick.ts) starts in one call
// into the addon, and each batch of completions librbd reported meanwhile is one call back.
import { queueSubmission, type QueuedSubmitter } from '../../bdev/submit_kick.js';
import { IoFlag, IoType, type BdevIo, type DeviceDone } from '../../bdev/types.js';
import { rbdCall, rbdNative, type RbdConnection } from './cluster.js';
import type { RbdImageHandle, RbdOps } from '../../native_rbd.js';
import { native, slotViews } from '../../native.js';
import { Ring } from '../../util/ring.js';

export class RbdQueue implements QueuedSubmitter {
  readonly depth: number;
  readonly #image: RbdImageHandle;
  readonly #ops: RbdOps;
  readonly #op: Uint32Array;
  readonly #flags: Uint32Array;
  readonly #len: Uint32Array;
  readonly #sq: Uint32Array;
  readonly #cqSlot: Uint32Array;
  readonly #offset: Float64Array;
  readonly #cqRes: Float64Array;
  /** The addon reads each slot's buffer from here at submit; kept set until completion. */
  readonly #bufs: (Buffer | null)[];
  readonly #ios: (BdevIo | null)[];
  readonly #freeSlots: Uint32Array;
  #nFree: number;
  #queued = 0;
  #batchOpen = false;
  /** I/O waiting for a free slot. */
  readonly #wait = new Ring<BdevIo>();
  /** Thread-pool jobs (diff, resize, size) running: close() waits for them. */
  readonly #jobs = new Set<Promise<unknown>>();
  #closed = false;

  constructor(
    conn: RbdConnection,
    depth: number,
    private readonly done: DeviceDone,
    onUpdate: () => void,
  ) {
    const n = rbdNative();
    this.depth = depth;
    this.#ops = native().constants.rbd;
    this.#bufs = new Array<Buffer | null>(depth).fill(null);
    this.#ios = new Array<BdevIo | null>(depth).fill(null);
    this.#image = new n.RbdImage(conn.handle, depth, this.#bufs, this.#onComplete, onUpdate);
    const v = slotViews(this.#image.table, this.#image.layout, depth);
    this.#op = v.op;
    this.#flags = v.rwFlags;
    this.#len = v.len;
    this.#sq = v.sq;
    this.#cqSlot = v.cqSlot;
    this.#offset = v.offset;
    this.#cqRes = v.cqRes;
    this.#freeSlots = new Uint32Array(depth);
    for (let i = 0; i < depth; i++) this.#freeSlots[i] = depth - 1 - i;
    this.#nFree = depth;
  }

  /** Opens the image (rbd_open on the thread pool); resolves with its size and features. */
  open(pool: string, image: string, readonly: boolean): Promise<{ size: number; features: number }> {
    return rbdCall(`cannot open RBD image ${pool}/${image}`, (cb) => {
      this.#image.open(pool, image, readonly, cb);
    });
  }

  get inflight(): number {
    return this.depth - this.#nFree;
  }

  /** READ, WRITE, FLUSH, UNMAP or WRITE_ZEROES; the bdev layer has checked range and buffer. */
  push(io: BdevIo): void {
    if (this.#nFree === 0) {
      this.#wait.push(io);
      return;
    }
    this.#place(io);
  }

  #place(io: BdevIo): void {
    const s = this.#freeSlots[--this.#nFree] as number;
    const o = this.#ops;
    this.#ios[s] = io;
    this.#offset[s] = io.offset;
    this.#len[s] = io.length;
    this.#flags[s] =
      io.type === IoType.Write && (io.flags & IoFlag.Fua) !== 0
        ? o.FUA
        : io.type === IoType.WriteZeroes && (io.flags & IoFlag.NoHole) !== 0
          ? o.NO_HOLE
          : 0;
    switch (io.type) {
      case IoType.Read:
        this.#op[s] = o.READ;
        this.#bufs[s] = io.buf;
        break;
      case IoType.Write:
        this.#op[s] = o.WRITE;
        this.#bufs[s] = io.buf;
        break;
      case IoType.Unmap:
        this.#op[s] = o.DISCARD;
        break;
      case IoType.WriteZeroes:
        this.#op[s] = o.WRITE_ZEROES;
        break;
      default:
        this.#op[s] = o.FLUSH;
        this.#len[s] = 0;
        this.#offset[s] = 0;
    }
    this.#sq[this.#queued++] = s;
    if (!this.#batchOpen) {
      this.#batchOpen = true;
      queueSubmission(this);
    }
  }

  submitQueued(): void {
    this.#batchOpen = false;
    if (this.#queued === 0 || this.#closed) return;
    // The addon takes every slot: a call librbd refuses completes through #onComplete.
    this.#image.submit(this.#queued);
    this.#queued = 0;
  }

  readonly #onComplete = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const s = this.#cqSlot[i] as number;
      const io = this.#ios[s] as BdevIo;
      this.#ios[s] = null;
      this.#bufs[s] = null;
      this.#freeSlots[this.#nFree++] = s;
      this.done(io, this.#cqRes[i] as number);
    }
    while (this.#wait.length > 0 && this.#nFree > 0) this.#place(this.#wait.shift());
  };

  /** Allocated extents of the range (offset/length pairs), whole objects at a time. */
  diff(offset: number, length: number): Promise<{ extents: Float64Array; truncated: boolean }> {
    return this.#job(
      rbdCall('rbd_diff_iterate2', (cb) => {
        this.#image.diff(offset, length, cb);
      }),
    );
  }

  resize(bytes: number): Promise<undefined> {
    return this.#job(
      rbdCall('cannot resize the RBD image', (cb) => {
        this.#image.resize(bytes, cb);
      }),
    );
  }

  size(): Promise<number> {
    return this.#job(
      rbdCall('rbd_get_size', (cb) => {
        this.#image.size(cb);
      }),
    );
  }

  #job<T>(p: Promise<T>): Promise<T> {
    const tracked = p.finally(() => {
      this.#jobs.delete(tracked);
    });
    this.#jobs.add(tracked);
    return tracked;
  }

  /** Closes the image once nothing is in flight: waits for running jobs, then rbd_close. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#jobs.size > 0) await Promise.allSettled([...this.#jobs]);
    await rbdCall<undefined>('rbd_close', (cb) => {
      this.#image.close(cb);
    });
  }
}
