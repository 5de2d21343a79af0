// Child I/Os that virtual bdevs send to their bases. Pooled per virtual bdev: each child and
// its completion callback are made once, then reused, so passing I/O down allocates nothing
// once warm.
import { newIo, type BdevIo } from './types.js';

export interface ChildIo extends BdevIo {
  /** The I/O this child works for, while in use. */
  parent: BdevIo | null;
  /** Module scratch (raid: which base; error: injected corruption pending). */
  tag: number;
}

export class ChildPool {
  readonly #free: ChildIo[] = [];
  #made = 0;

  /** @param onDone runs when a child completes (never inside the base's submit). */
  constructor(private readonly onDone: (child: ChildIo) => void) {}

  /** Children ever created: bounded by the peak number in flight. */
  get made(): number { return this.#made; }

  get(parent: BdevIo): ChildIo {
    let c = this.#free.pop();
    if (c === undefined) {
      const child: ChildIo = Object.assign(newIo(() => this.onDone(child)), { parent: null, tag: 0 });
      c = child;
      this.#made++;
    }
    c.parent = parent;
    c.tag = 0;
    return c;
  }

  /** A child with the parent's type, range (shifted by `shift` bytes), flags and buffer. */
  copyOf(parent: BdevIo, shift: number): ChildIo {
    const c = this.get(parent);
    c.type = parent.type;
    c.offset = parent.offset + shift;
    c.length = parent.length;
    c.flags = parent.flags;
    c.buf = parent.buf;
    return c;
  }

  put(c: ChildIo): void {
    c.parent = null;
    c.buf = null;
    this.#free.push(c);
  }
}
