// A first-in first-out ring that allocates nothing once it has grown to its busiest length:
// waiting I/O and queues waiting for AIO slots live on the hot path.
export class Fifo<T> {
  #items: (T | null)[] = [];
  #head = 0;
  #len = 0;

  get length(): number { return this.#len; }

  push(x: T): void {
    if (this.#len === this.#items.length) {
      // Grow, unrolling the ring so head is 0 again.
      const grown = new Array<T | null>(Math.max(16, this.#items.length * 2)).fill(null);
      for (let i = 0; i < this.#len; i++) grown[i] = this.#items[(this.#head + i) % this.#items.length] ?? null;
      this.#items = grown;
      this.#head = 0;
    }
    this.#items[(this.#head + this.#len) % this.#items.length] = x;
    this.#len++;
  }

  /** The oldest item, left in place; only when length > 0. */
  peek(): T { return this.#items[this.#head] as T; }

  /** The oldest item; only when length > 0. Its place is cleared, so the ring keeps no reference. */
  shift(): T {
    const x = this.#items[this.#head] as T;
    this.#items[this.#head] = null;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#len--;
    return x;
  }
}
