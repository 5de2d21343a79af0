// The AIO engine of this Node environment (its main thread, or one worker thread), shared by
// every AIO bdev in it, as SPDK shares one io context per thread: one kernel AIO context (a few
// when bdevs need more room), one eventfd on libuv, one slot table. The I/O queued until the
// submitter's next kick (or, at the latest, the end of the macrotask; see submit_kick.ts) goes
// out in one io_submit whatever bdev it is for, and each completion batch is one call from
// native code, dispatched to the owning bdev's queue by slot. Each bdev's own in-flight cap is
// kept by its AioQueue; when slots run out, the queues waiting for one are served round-robin,
// one I/O each, so a busy bdev cannot starve the others. The io_uring engine has the same
// interface and slot table (native/uring_engine.h): an EngineKind says which native engine this
// drives, and each kind has its own instance.
import { constants } from 'node:os';
import { native, slotViews, type AioEngineHandle } from '../../native.js';
import type { Logger } from '../../log.js';
import { Ring } from '../../util/ring.js';
import { queueSubmission, type QueuedSubmitter } from '../../bdev/submit_kick.js';
import { IoFlag, IoType, type BdevIo } from '../../bdev/types.js';

const E = constants.errno;

/**
 * Events the engine grows to for many bdevs: their caps add up past it (10,000 bdevs of depth
 * 128 would want 1.28 M, twenty times fs.aio-max-nr), but one process rarely has more than a
 * few thousand I/Os in flight. A bdev whose own cap is larger still gets room for it.
 */
export const SHARED_EVENTS = 4096;

/**
 * Events of the next context, or 0 for none: enough for the sum of the caps, up to
 * SHARED_EVENTS (or the largest single cap), at least doubling what is there so that a few
 * contexts cover it all.
 */
export function nextContextEvents(capacity: number, demand: number, maxCap: number): number {
  const limit = Math.max(SHARED_EVENTS, maxCap);
  const want = Math.min(demand, limit);
  if (want <= capacity) return 0;
  return Math.min(Math.max(want - capacity, capacity), limit - capacity);
}

/**
 * What the engine needs of a bdev's queue (AioQueue): declared here so the engine does not
 * import the queue that imports it.
 */
export interface EngineQueue {
  readonly fd: number;
  /** In the engine's list of queues waiting for a slot; set and cleared by the engine. */
  listed: boolean;
  /** It has I/O waiting and room under its cap. */
  readonly hungry: boolean;
  /** The oldest waiting I/O, which takes a slot now. */
  nextWaiting(): BdevIo;
  /** One of its I/Os completed with result (0 or -errno). */
  settle(io: BdevIo, result: number): void;
}

/** What the slot table's op and rwFlags columns hold for each request, in one kind's codes. */
export interface EngineCodes {
  read: number;
  write: number;
  flush: number;
  /** rwFlags of a FLUSH (io_uring: its fsync_flags). */
  flushFlags: number;
  /** rwFlags of a FUA write. */
  fua: number;
}

/** One native engine class the JS engine drives: Linux AIO, io_uring. */
export interface EngineKind {
  /** Its name in messages. */
  readonly label: string;
  /** The system call that sets up room (named when growing fails). */
  readonly setupCall: string;
  /** The native engine with a first context (ring) of `events`; throws its OsError. */
  open(events: number, bufs: (Buffer | null)[], onComplete: (n: number) => void): AioEngineHandle;
  /** Its codes, from native().constants. */
  codes(): EngineCodes;
}

export const AIO_ENGINE: EngineKind = {
  label: 'AIO',
  setupCall: 'io_setup',
  open: (events, bufs, onComplete) => new (native().AioEngine)(events, bufs, onComplete),
  codes: () => {
    const k = native().constants.aio;
    return { read: k.IOCB_CMD_PREAD, write: k.IOCB_CMD_PWRITE, flush: k.IOCB_CMD_FDSYNC, flushFlags: 0, fua: k.RWF_DSYNC };
  },
};

/** This environment's engine of each kind (module state is per environment: a worker has its own). */
const current = new Map<EngineKind, AioEngine>();

/** The engine of `kind`, made by its first bdev; throws the native OsError (syscall io_setup, io_uring_setup) if the kernel refuses it. */
export function attachEngine(kind: EngineKind, cap: number, log: Logger): AioEngine {
  let e = current.get(kind);
  if (e === undefined) {
    e = new AioEngine(kind, cap);
    current.set(kind, e);
  } else e.admit(cap, log);
  return e;
}

/** The engine's state, for tests and the scale benchmark: null when no bdev of the kind is open. */
export function engineStats(kind: EngineKind = AIO_ENGINE): EngineStats | null {
  return current.get(kind)?.stats() ?? null;
}

export interface EngineStats {
  capacity: number;
  contexts: number;
  inflight: number;
  bdevs: number;
  /** Lone requests whose completion the loop found by spinning (native/spin_choice.h). */
  spins: number;
  /** Spins started, found or not: with `spins`, how often spinning paid. */
  spinTries: number;
}

export class AioEngine implements QueuedSubmitter {
  readonly kind: EngineKind;
  readonly #h: AioEngineHandle;
  #op!: Uint32Array;
  #rwFlags!: Uint32Array;
  #len!: Uint32Array;
  #fd!: Uint32Array;
  #sq!: Uint32Array;
  #cqSlot!: Uint32Array;
  #offset!: Float64Array;
  #cqRes!: Float64Array;
  #freeSlots = new Uint32Array(0);
  #nFree = 0;
  /** The engine reads each slot's buffer from here at submit; kept set until completion. */
  readonly #bufs: (Buffer | null)[] = [];
  readonly #ios: (BdevIo | null)[] = [];
  readonly #owners: (EngineQueue | null)[] = [];
  #queued = 0;
  /** Registered with submit_kick for the batch being queued. */
  #batchOpen = false;
  /** Queues with I/O waiting for a slot they may use, served round-robin. */
  readonly #hungry = new Ring<EngineQueue>();
  #retryTimer: NodeJS.Timeout | null = null;
  /** Open queues, the sum of their caps, and how many have each cap (for the largest). */
  #queues = 0;
  #demand = 0;
  readonly #caps = new Map<number, number>();
  #maxCap = 0;
  #growWarned = false;
  readonly #read: number;
  readonly #write: number;
  readonly #flushOp: number;
  readonly #flushFlags: number;
  readonly #fua: number;

  constructor(kind: EngineKind, cap: number) {
    this.kind = kind;
    this.#h = kind.open(nextContextEvents(0, cap, cap), this.#bufs, this.#onComplete);
    ({ read: this.#read, write: this.#write, flush: this.#flushOp, flushFlags: this.#flushFlags, fua: this.#fua } = kind.codes());
    this.#count(cap, 1);
    this.#adopt(0);
  }

  get userRing(): boolean {
    return this.#h.userRing;
  }

  stats(): EngineStats {
    const h = this.#h;
    return {
      capacity: h.capacity,
      contexts: h.contexts,
      inflight: h.inflight,
      bdevs: this.#queues,
      spins: h.spins,
      spinTries: h.spinTries,
    };
  }

  /** A new queue of `cap`: grows the engine when the caps call for it and the kernel allows. */
  admit(cap: number, log: Logger): void {
    this.#count(cap, 1);
    const events = nextContextEvents(this.#h.capacity, this.#demand, this.#maxCap);
    if (events === 0) return;
    const before = this.#h.capacity;
    try {
      this.#h.grow(events);
    } catch (err) {
      // Not fatal: the bdevs share the slots there are, and I/O beyond them waits its turn.
      if (!this.#growWarned) {
        this.#growWarned = true;
        log.warn(
          { err, capacity: before, wanted: before + events },
          `the shared ${this.kind.label} engine stays at ${before} slots (${this.kind.setupCall}(${events}) failed: ${(err as Error).message}); I/O beyond them waits for a free slot`,
        );
      }
      return;
    }
    this.#growWarned = false;
    this.#adopt(before);
    this.#serveWaiting();
  }

  /** A queue closed (nothing of it in flight or waiting); the last one destroys the engine. */
  release(cap: number): void {
    this.#count(cap, -1);
    if (this.#queues > 0) return;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#h.close();
    if (current.get(this.kind) === this) current.delete(this.kind);
  }

  #count(cap: number, d: 1 | -1): void {
    this.#queues += d;
    this.#demand += d * cap;
    const k = (this.#caps.get(cap) ?? 0) + d;
    if (k > 0) this.#caps.set(cap, k);
    else this.#caps.delete(cap);
    if (d > 0) this.#maxCap = Math.max(this.#maxCap, cap);
    else if (cap === this.#maxCap && k === 0) this.#maxCap = Math.max(0, ...this.#caps.keys());
  }

  // Views of the (new) table, and the slots from `from` on added to the free list.
  #adopt(from: number): void {
    const n = this.#h.capacity;
    ({
      op: this.#op,
      rwFlags: this.#rwFlags,
      len: this.#len,
      fd: this.#fd,
      sq: this.#sq,
      cqSlot: this.#cqSlot,
      offset: this.#offset,
      cqRes: this.#cqRes,
    } = slotViews(this.#h.table, this.#h.layout, n));
    const free = new Uint32Array(n);
    free.set(this.#freeSlots.subarray(0, this.#nFree));
    let k = this.#nFree;
    for (let s = n - 1; s >= from; s--) free[k++] = s;
    this.#freeSlots = free;
    this.#nFree = k;
    for (let s = this.#ios.length; s < n; s++) {
      this.#bufs.push(null);
      this.#ios.push(null);
      this.#owners.push(null);
    }
  }

  /** Whether a queue with nothing waiting may place an I/O now (no other queue waits first). */
  hasFreeSlot(): boolean {
    return this.#nFree > 0 && this.#hungry.length === 0;
  }

  /** READ, WRITE or FLUSH of q into a free slot; the bdev layer has checked range, alignment and buffer. */
  place(q: EngineQueue, io: BdevIo): void {
    const s = this.#freeSlots[--this.#nFree] as number;
    this.#ios[s] = io;
    this.#owners[s] = q;
    this.#fd[s] = q.fd;
    if (io.type === IoType.Flush) {
      this.#op[s] = this.#flushOp;
      this.#len[s] = 0;
      this.#rwFlags[s] = this.#flushFlags;
      this.#offset[s] = 0;
    } else {
      this.#op[s] = io.type === IoType.Read ? this.#read : this.#write;
      this.#len[s] = io.length;
      this.#offset[s] = io.offset;
      this.#rwFlags[s] = io.type === IoType.Write && (io.flags & IoFlag.Fua) !== 0 ? this.#fua : 0;
      this.#bufs[s] = io.buf;
    }
    this.#sq[this.#queued++] = s;
    if (!this.#batchOpen) {
      this.#batchOpen = true;
      queueSubmission(this);
    }
  }

  /** q has I/O waiting and room under its cap: it gets slots in turn as they free up. */
  wantSlot(q: EngineQueue): void {
    if (q.listed) return;
    q.listed = true;
    this.#hungry.push(q);
  }

  // One I/O per waiting queue in turn while slots are free; a queue that still waits goes last.
  #serveWaiting(): void {
    while (this.#nFree > 0 && this.#hungry.length > 0) {
      const q = this.#hungry.shift();
      q.listed = false;
      if (!q.hungry) continue;
      this.place(q, q.nextWaiting());
      if (q.hungry) this.wantSlot(q);
    }
  }

  submitQueued(): void {
    this.#batchOpen = false;
    this.#flush();
  }

  readonly #flush = (): void => {
    let failed = false;
    while (this.#queued > 0 && this.#queues > 0) {
      let n = this.#h.submit(this.#queued);
      if (n === 0) {
        this.#retryLater();
        break;
      }
      if (n < 0) {
        // The kernel refused the first iocb (bad fd, unsupported opcode): fail it alone.
        this.#finish(this.#sq[0] as number, n);
        failed = true;
        n = 1;
      }
      this.#sq.copyWithin(0, n, this.#queued);
      this.#queued -= n;
    }
    if (failed) this.#serveWaiting();
  };

  // Every ring is full although slots never outnumber the contexts' events (the kernel's
  // per-CPU reservation): the next completion retries; with nothing in flight, a short timer.
  #retryLater(): void {
    if (this.#h.inflight > 0 || this.#retryTimer !== null) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#flush();
    }, 1);
  }

  readonly #onComplete = (n: number): void => {
    for (let i = 0; i < n; i++) this.#finish(this.#cqSlot[i] as number, this.#cqRes[i] as number);
    this.#serveWaiting();
    if (this.#queued > 0) this.#flush();
  };

  #finish(s: number, res: number): void {
    const io = this.#ios[s];
    if (io === null || io === undefined) return;
    const q = this.#owners[s] as EngineQueue;
    this.#ios[s] = null;
    this.#owners[s] = null;
    this.#bufs[s] = null;
    this.#freeSlots[this.#nFree++] = s;
    let result: number;
    if (res < 0) result = res;
    else if (io.type === IoType.Flush) result = 0;
    else result = res === io.length ? 0 : -E.EIO; // a short transfer is never a success
    q.settle(io, result);
  }
}
