// SPDK's bdev QoS (bdev_set_qos_limit): rate limits on a bdev's READ and WRITE, as token
// buckets. An I/O goes on at once while every limit that applies to it has allowance left (it
// may overdraw, as in SPDK, so one large I/O never waits forever); otherwise it waits for a
// timer set to when the allowance comes back. READs and WRITEs wait in two FIFO queues, so a
// write limit never holds up reads. I/O is delayed, never failed, and nothing polls: with
// nothing held there is no timer.
import { performance } from 'node:perf_hooks';
import { Ring } from '../util/ring.js';
import { IoType, type BdevIo } from './types.js';

/** The limits as SPDK names and reports them (assigned_rate_limits): I/O per second and MiB per second; 0 = no limit. */
export interface QosLimits {
  rw_ios_per_sec: number;
  rw_mbytes_per_sec: number;
  r_mbytes_per_sec: number;
  w_mbytes_per_sec: number;
}

export const QOS_LIMIT_KEYS = [
  'rw_ios_per_sec',
  'rw_mbytes_per_sec',
  'r_mbytes_per_sec',
  'w_mbytes_per_sec',
] as const satisfies readonly (keyof QosLimits)[];

export const NO_QOS_LIMITS: Readonly<QosLimits> = { rw_ios_per_sec: 0, rw_mbytes_per_sec: 0, r_mbytes_per_sec: 0, w_mbytes_per_sec: 0 };

/** SPDK's granularity for rw_ios_per_sec: limits are rounded up to a multiple of it. */
export const QOS_IOS_STEP = 1000;

const MiB = 1024 * 1024;
/**
 * Unused allowance a limit keeps: after an idle spell a burst of this long at the limit goes
 * through at once, and a release timer that fires late (a busy event loop) loses nothing.
 */
const BURST_MS = 50;
/** The allowance a new limit starts with: SPDK's 1 ms timeslice. */
const START_MS = 1;

class Bucket {
  /** Units (I/Os or bytes) per millisecond; 0: no limit. */
  rate = 0;
  tokens = 0;

  set(perSecond: number): void {
    const was = this.rate;
    this.rate = perSecond / 1000;
    if (this.rate === 0) this.tokens = 0;
    else if (was === 0) this.tokens = this.rate * START_MS;
    else this.tokens = Math.min(this.tokens, this.rate * BURST_MS);
  }

  refill(ms: number): void {
    if (this.rate > 0) this.tokens = Math.min(this.rate * BURST_MS, this.tokens + this.rate * ms);
  }

  take(n: number): void {
    if (this.rate > 0) this.tokens -= n;
  }

  /** Milliseconds until there is allowance again. */
  wait(): number {
    return this.rate === 0 || this.tokens > 0 ? 0 : -this.tokens / this.rate;
  }
}

export class Qos {
  readonly #limits: QosLimits = { ...NO_QOS_LIMITS };
  readonly #rwIos = new Bucket();
  readonly #rwBytes = new Bucket();
  readonly #rBytes = new Bucket();
  readonly #wBytes = new Bucket();
  #last = performance.now();
  // Held I/O, oldest first.
  readonly #reads = new Ring<BdevIo>();
  readonly #writes = new Ring<BdevIo>();
  readonly #queues = [this.#reads, this.#writes] as const;
  #timer: NodeJS.Timeout | null = null;
  /** When the timer fires (performance.now() ms). */
  #due = 0;

  /** @param release starts an I/O that was held (called from the timer, never from admit()). */
  constructor(private readonly release: (io: BdevIo) => void) {}

  get limits(): QosLimits {
    return { ...this.#limits };
  }
  /** Whether any limit is set. */
  get active(): boolean {
    return QOS_LIMIT_KEYS.some((k) => this.#limits[k] > 0);
  }
  /** I/Os waiting for allowance now. */
  get held(): number {
    return this.#reads.length + this.#writes.length;
  }

  /** Changes the limits given (0 removes one); held I/O is reconsidered at once. */
  set(limits: Partial<QosLimits>): void {
    for (const k of QOS_LIMIT_KEYS) {
      const v = limits[k];
      if (v !== undefined) this.#limits[k] = v;
    }
    this.#refill();
    this.#rwIos.set(this.#limits.rw_ios_per_sec);
    this.#rwBytes.set(this.#limits.rw_mbytes_per_sec * MiB);
    this.#rBytes.set(this.#limits.r_mbytes_per_sec * MiB);
    this.#wBytes.set(this.#limits.w_mbytes_per_sec * MiB);
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#pump();
  }

  /** True: go on now (its allowance is taken). False: held, to be started later through release(). */
  admit(io: BdevIo): boolean {
    if (io.type !== IoType.Read && io.type !== IoType.Write) return true;
    const q = io.type === IoType.Read ? this.#reads : this.#writes;
    if (q.length > 0) {
      q.push(io);
      return false;
    } // behind its own kind: the timer is set for the head
    this.#refill();
    const wait = this.#wait(io);
    if (wait === 0) {
      this.#take(io);
      return true;
    }
    q.push(io);
    // The new head of its queue may be due before the other queue's head the timer waits for.
    if (this.#timer === null || performance.now() + wait < this.#due) this.#arm();
    return false;
  }

  /** Starts every held I/O now, limits or not (the limits were removed, or the bdev is closing). */
  drain(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    while (this.#reads.length > 0) this.release(this.#reads.shift());
    while (this.#writes.length > 0) this.release(this.#writes.shift());
  }

  // Reads and writes take turns while either fits, so neither starves the other under a shared limit.
  readonly #pump = (): void => {
    this.#timer = null;
    this.#refill();
    for (let moved = true; moved; ) {
      moved = false;
      for (const q of this.#queues) {
        if (q.length === 0) continue;
        const io = q.peek();
        if (this.#wait(io) > 0) continue;
        this.#take(io);
        this.release(q.shift());
        moved = true;
      }
    }
    if (this.held > 0) this.#arm();
  };

  #arm(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    let ms = Infinity;
    for (const q of this.#queues) if (q.length > 0) ms = Math.min(ms, this.#wait(q.peek()));
    // A timer may fire a little before the allowance is back by our clock: then it is set again.
    ms = Math.max(1, Math.ceil(ms));
    this.#due = performance.now() + ms;
    this.#timer = setTimeout(this.#pump, ms);
  }

  #refill(): void {
    const now = performance.now();
    const ms = now - this.#last;
    this.#last = now;
    this.#rwIos.refill(ms);
    this.#rwBytes.refill(ms);
    this.#rBytes.refill(ms);
    this.#wBytes.refill(ms);
  }

  /** Milliseconds until every limit that applies to io has allowance. */
  #wait(io: BdevIo): number {
    const rw = Math.max(this.#rwIos.wait(), this.#rwBytes.wait());
    return Math.max(rw, io.type === IoType.Read ? this.#rBytes.wait() : this.#wBytes.wait());
  }

  #take(io: BdevIo): void {
    this.#rwIos.take(1);
    this.#rwBytes.take(io.length);
    if (io.type === IoType.Read) this.#rBytes.take(io.length);
    else this.#wBytes.take(io.length);
  }
}
