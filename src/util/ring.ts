// A first-in first-out ring that allocates nothing once it has grown to its busiest length: I/O
// waiting for AIO or RBD slots, for QoS allowance or for a delay, and replies waiting behind a
// streamed one live on the hot path. Its length is always a power of two, so an index wraps
// with a mask.
const FIRST = 16;

export class Ring<T> {
  #items: (T | null)[] = [];
  #head = 0;
  #len = 0;

  get length(): number {
    return this.#len;
  }

  push(x: T): void {
    const cap = this.#items.length;
    if (this.#len === cap) {
      // Grow, unrolling the ring so head is 0 again.
      const grown = new Array<T | null>(cap === 0 ? FIRST : cap * 2).fill(null);
      for (let i = 0; i < this.#len; i++) grown[i] = this.#items[(this.#head + i) & (cap - 1)] ?? null;
      this.#items = grown;
      this.#head = 0;
    }
    this.#items[(this.#head + this.#len) & (this.#items.length - 1)] = x;
    this.#len++;
  }

  /** The oldest item, left in place; only when length > 0. */
  peek(): T {
    return this.#items[this.#head] as T;
  }

  /** The oldest item; only when length > 0. Its place is cleared, so the ring keeps no reference. */
  shift(): T {
    const x = this.#items[this.#head] as T;
    this.#items[this.#head] = null;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#len--;
    return x;
  }
}
