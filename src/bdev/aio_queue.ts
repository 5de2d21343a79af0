// Feeds BdevIos to one native AIO engine: the I/O queued until the submitter's next kick (or, at
// the latest, the end of the macrotask; see submit_kick.ts) goes out in one io_submit, and each
// completion batch from the kernel is one call from native code.
import { constants } from 'node:os';
import { native, type AioEngineHandle } from '../native.js';
import { queueSubmission, type QueuedSubmitter } from './submit_kick.js';
import { IoType, type BdevIo, type Complete } from './types.js';

const E = constants.errno;

export class AioQueue implements QueuedSubmitter {
  readonly depth: number;
  readonly #engine: AioEngineHandle;
  readonly #op: Uint32Array;
  readonly #rwFlags: Uint32Array;
  readonly #len: Uint32Array;
  readonly #sq: Uint32Array;
  readonly #cqSlot: Uint32Array;
  readonly #offset: Float64Array;
  readonly #cqRes: Float64Array;
  /** The engine reads each slot's buffer from here at submit; kept set until completion. */
  readonly #bufs: (Buffer | null)[];
  readonly #ios: (BdevIo | null)[];
  readonly #freeSlots: Uint32Array;
  #nFree: number;
  #queued = 0;
  /** Registered with submit_kick for the batch being queued. */
  #batchOpen = false;
  /** I/O waiting for a free slot: a ring, so waiting allocates nothing once it has grown. */
  #wait: (BdevIo | null)[] = [];
  #waitHead = 0;
  #waitLen = 0;
  #retryTimer: NodeJS.Timeout | null = null;
  readonly #complete: Complete;
  readonly #flushOp: number;
  readonly #fua: number;
  #closed = false;

  constructor(fd: number, depth: number, complete: Complete) {
    const n = native();
    this.depth = depth;
    this.#complete = complete;
    this.#bufs = new Array<Buffer | null>(depth).fill(null);
    this.#ios = new Array<BdevIo | null>(depth).fill(null);
    this.#engine = new n.AioEngine(fd, depth, this.#bufs, this.#onComplete);
    const t = this.#engine.table, l = this.#engine.layout;
    this.#op = new Uint32Array(t, l.op, depth);
    this.#rwFlags = new Uint32Array(t, l.rwFlags, depth);
    this.#len = new Uint32Array(t, l.len, depth);
    this.#sq = new Uint32Array(t, l.sq, depth);
    this.#cqSlot = new Uint32Array(t, l.cqSlot, depth);
    this.#offset = new Float64Array(t, l.offset, depth);
    this.#cqRes = new Float64Array(t, l.cqRes, depth);
    this.#freeSlots = new Uint32Array(depth);
    for (let i = 0; i < depth; i++) this.#freeSlots[i] = depth - 1 - i;
    this.#nFree = depth;
    this.#flushOp = n.constants.IOCB_CMD_FDSYNC;
    this.#fua = n.constants.RWF_DSYNC;
  }

  get userRing(): boolean { return this.#engine.userRing; }
  get inflight(): number { return this.depth - this.#nFree; }

  /** READ, WRITE or FLUSH. The bdev layer has checked range, alignment and buffer. */
  push(io: BdevIo): void {
    if (this.#nFree === 0) { this.#enqueueWait(io); return; }
    this.#place(io);
  }

  #place(io: BdevIo): void {
    const s = this.#freeSlots[--this.#nFree] as number;
    this.#ios[s] = io;
    const c = native().constants;
    if (io.type === IoType.Flush) {
      this.#op[s] = this.#flushOp;
      this.#len[s] = 0;
      this.#rwFlags[s] = 0;
      this.#offset[s] = 0;
    } else {
      this.#op[s] = io.type === IoType.Read ? c.IOCB_CMD_PREAD : c.IOCB_CMD_PWRITE;
      this.#len[s] = io.length;
      this.#offset[s] = io.offset;
      this.#rwFlags[s] = io.type === IoType.Write && io.fua ? this.#fua : 0;
      this.#bufs[s] = io.buf;
    }
    this.#sq[this.#queued++] = s;
    if (!this.#batchOpen) {
      this.#batchOpen = true;
      queueSubmission(this);
    }
  }

  submitQueued(): void {
    this.#batchOpen = false;
    this.#flush();
  }

  readonly #flush = (): void => {
    while (this.#queued > 0 && !this.#closed) {
      let n = this.#engine.submit(this.#queued);
      if (n === 0) { this.#retryLater(); return; }
      if (n < 0) {
        // The kernel refused the first iocb (bad fd, unsupported opcode): fail it alone.
        const s = this.#sq[0] as number;
        this.#finish(s, n);
        n = 1;
      }
      this.#sq.copyWithin(0, n, this.#queued);
      this.#queued -= n;
    }
  };

  // The ring is full although we never exceed its depth (another submitter, or the kernel's
  // per-CPU reservation): the next completion retries; with nothing in flight, a short timer.
  #retryLater(): void {
    if (this.#engine.inflight > 0 || this.#retryTimer !== null) return;
    this.#retryTimer = setTimeout(() => { this.#retryTimer = null; this.#flush(); }, 1);
  }

  readonly #onComplete = (n: number): void => {
    for (let i = 0; i < n; i++) this.#finish(this.#cqSlot[i] as number, this.#cqRes[i] as number);
    while (this.#waitLen > 0 && this.#nFree > 0) this.#place(this.#dequeueWait());
    if (this.#queued > 0) this.#flush();
  };

  #finish(s: number, res: number): void {
    const io = this.#ios[s];
    if (io === null || io === undefined) return;
    this.#ios[s] = null;
    this.#bufs[s] = null;
    this.#freeSlots[this.#nFree++] = s;
    let result: number;
    if (res < 0) result = res;
    else if (io.type === IoType.Flush) result = 0;
    else result = res === io.length ? 0 : -E.EIO; // a short transfer is never a success
    this.#complete(io, result);
  }

  #enqueueWait(io: BdevIo): void {
    if (this.#waitLen === this.#wait.length) {
      // Grow the ring, unrolling it so head is 0 again.
      const grown: (BdevIo | null)[] = new Array<BdevIo | null>(Math.max(16, this.#wait.length * 2)).fill(null);
      for (let i = 0; i < this.#waitLen; i++) grown[i] = this.#wait[(this.#waitHead + i) % this.#wait.length] ?? null;
      this.#wait = grown;
      this.#waitHead = 0;
    }
    this.#wait[(this.#waitHead + this.#waitLen) % this.#wait.length] = io;
    this.#waitLen++;
  }

  #dequeueWait(): BdevIo {
    const io = this.#wait[this.#waitHead] as BdevIo;
    this.#wait[this.#waitHead] = null;
    this.#waitHead = (this.#waitHead + 1) % this.#wait.length;
    this.#waitLen--;
    return io;
  }

  /** Destroys the AIO context. Called only when nothing is in flight. */
  close(): void {
    this.#closed = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#engine.close();
  }
}
