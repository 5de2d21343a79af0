// One server-wide budget of bytes in flight (request buffers, bounce buffers and the replies
// queued behind them), shared fairly by the connections that use it. A connection whose request
// is not admitted simply stops being read until memory comes back, so a client that never reads
// its replies stalls only itself.
import { UsageError } from '../errors.js';
import { BufferPool, IO_CHUNK } from '../bdev/buffers.js';

/** Keeps a busy server well under 512 MiB of request memory. */
export const DEFAULT_MEMORY_BUDGET = 256 * 1024 * 1024;
/** Below this the budget could not hold one bounced piece per connection in flight. */
export const MIN_MEMORY_BUDGET = 4 * IO_CHUNK;

/**
 * What one READ or WRITE of `length` bytes at `offset` is charged: the buffer of its first piece
 * (a longer request runs piece by piece through that one buffer), twice over when it is not
 * aligned to the block size (the bdev layer bounces it through a buffer as large again). So any
 * size --max-payload allows costs at most 2 * IO_CHUNK, which a connection holding nothing is
 * always admitted for.
 */
export function ioCharge(offset: number, length: number, blockSize: number): number {
  const piece = BufferPool.sizeFor(Math.min(length, IO_CHUNK));
  return offset % blockSize !== 0 || length % blockSize !== 0 ? 2 * piece : piece;
}

/** One connection's share of a MemoryBudget. */
export class BudgetAccount {
  /** Bytes this account holds (taken and not yet given back). */
  held = 0;
  /** Bytes reserved for it when it was woken: the retried request takes them. */
  granted = 0;
  /** What it asked for when it was refused (0 while not waiting). */
  want = 0;
  closed = false;

  /** `onReady` runs (once per wake-up, from a microtask) when a refused request may now be admitted. */
  constructor(
    readonly budget: MemoryBudget,
    readonly onReady: () => void,
  ) {}

  /** True when `n` bytes are now held for this account; false: wait for onReady, then ask again. */
  take(n: number): boolean {
    return this.budget.take(this, n);
  }

  /** Gives `n` bytes back and wakes whoever waits for them. */
  release(n: number): void {
    this.budget.release(this, n);
  }

  /** The connection is gone: anything still held or reserved goes back. */
  close(): void {
    this.budget.close(this);
  }
}

export class MemoryBudget {
  readonly total: number;
  #used = 0;
  /** Accounts holding or waiting for memory: the fair share divides the total among them. */
  #active = 0;
  /** Refused accounts, first come first served. */
  readonly #waiting: BudgetAccount[] = [];
  #waking = false;

  constructor(total = DEFAULT_MEMORY_BUDGET) {
    if (!Number.isSafeInteger(total) || total < MIN_MEMORY_BUDGET) {
      throw new UsageError(`memory budget ${total} must be a whole number of bytes of at least ${MIN_MEMORY_BUDGET}`);
    }
    this.total = total;
  }

  get used(): number {
    return this.#used;
  }
  /** Accounts waiting for memory now (diagnostics and tests). */
  get waiting(): number {
    return this.#waiting.length;
  }
  /** What one active account may hold while others want memory too. */
  get share(): number {
    return Math.floor(this.total / Math.max(1, this.#active));
  }

  account(onReady: () => void): BudgetAccount {
    return new BudgetAccount(this, onReady);
  }

  take(a: BudgetAccount, n: number): boolean {
    if (a.closed) return false;
    if (a.granted > 0) {
      // The request it was woken for, asked again: the reservation pays for it.
      const g = a.granted;
      a.granted = 0;
      a.held += Math.min(n, g);
      this.#used -= g - Math.min(n, g);
      if (n <= g) {
        if (a.held === 0) this.#active--;
        if (n < g) this.#wake();
        return true;
      }
      n -= g;
    }
    if (a.want > 0) return false; // already queued: its turn comes in order
    if (n === 0) return true;
    if (this.#admits(a, n)) {
      this.#hold(a, n);
      return true;
    }
    if (a.held === 0) this.#active++;
    a.want = n;
    this.#waiting.push(a);
    return false;
  }

  release(a: BudgetAccount, n: number): void {
    if (n <= 0) return;
    this.#give(a, n);
    this.#wake();
  }

  close(a: BudgetAccount): void {
    if (a.closed) return;
    const i = this.#waiting.indexOf(a);
    if (i >= 0) this.#waiting.splice(i, 1);
    const wasActive = a.held > 0 || a.want > 0 || a.granted > 0;
    this.#used -= a.held + a.granted;
    a.held = 0;
    a.granted = 0;
    a.want = 0;
    a.closed = true;
    if (wasActive) this.#active--;
    this.#wake();
  }

  /**
   * An account that holds nothing is always admitted: it then cannot wait on memory that others
   * may never give back (clients that do not read), so every connection makes progress. What
   * that lets through is bounded by one request's charge per connection.
   */
  #admits(a: BudgetAccount, n: number): boolean {
    if (a.held === 0) return true;
    return this.#fits(a, n) && (this.#waiting.length === 0 || this.#onlyShareBlocked());
  }

  // Waiters held back only by their own share wait for their own replies, not for anyone's
  // memory: a request that fits may go ahead of them.
  #onlyShareBlocked(): boolean {
    const share = this.share;
    for (const w of this.#waiting) if (w.held + w.want <= share) return false;
    return true;
  }

  #fits(a: BudgetAccount, n: number): boolean {
    return this.#used + n <= this.total && a.held + n <= this.share;
  }

  #hold(a: BudgetAccount, n: number): void {
    if (a.held === 0) this.#active++;
    a.held += n;
    this.#used += n;
  }

  #give(a: BudgetAccount, n: number): void {
    const k = Math.min(n, a.held);
    a.held -= k;
    this.#used -= k;
    if (a.held === 0 && a.want === 0 && a.granted === 0 && k > 0) this.#active--;
  }

  // Waiters are served in arrival order. Once one is held back by the total, later ones must not
  // overtake it, except those that hold nothing (they never wait on others); one held back only
  // by its own share waits for its own replies and lets the next one go.
  #wake(): void {
    if (this.#waking) return;
    this.#waking = true;
    try {
      let blocked = false;
      for (let i = 0; i < this.#waiting.length; ) {
        const a = this.#waiting[i] as BudgetAccount;
        const n = a.want;
        if (a.held === 0 || (!blocked && this.#fits(a, n))) {
          this.#waiting.splice(i, 1);
          a.want = 0;
          a.granted = n; // reserved until the retried request takes it
          this.#used += n;
          queueMicrotask(a.onReady);
          continue;
        }
        if (this.#used + n > this.total) blocked = true;
        i++;
      }
    } finally {
      this.#waking = false;
    }
  }
}
