// SEEK_DATA / SEEK_HOLE over an RBD image, from rbd_diff_iterate2 (whole objects: with
// fast-diff it reads the object map, not every object). The NBD layer's block status asks for
// the next data and the next hole in turn from the same place, so the last window's extents
// are kept and answer both; a write, discard or zeroing that completes makes them stale.
import { constants } from 'node:os';
import type { RbdQueue } from './queue.js';

const E = constants.errno;

/** How much of the image one diff call covers. */
export const DIFF_WINDOW = 2 ** 30;

interface Window {
  from: number;
  /** Up to where the extents are the whole truth (less than the window when the list was cut). */
  known: number;
  /** Sorted, merged [start, end) pairs inside [from, known). */
  extents: Float64Array;
}

export class RbdExtents {
  #cached: Window | null = null;
  /** Bumped by every completed write-like I/O: a diff started before one is not kept. */
  #generation = 0;

  constructor(readonly queue: RbdQueue, readonly size: () => number) {}

  /** The image's allocation changed (a write, discard or zeroing completed). */
  changed(): void {
    this.#generation++;
    this.#cached = null;
  }

  /** The first data offset at or after pos, or -ENXIO when only holes follow. */
  async nextData(pos: number): Promise<number> {
    for (let from = pos; from < this.size();) {
      const w = await this.#window(from);
      for (let i = 0; i < w.extents.length; i += 2) {
        const end = (w.extents[i] as number) + (w.extents[i + 1] as number);
        if (end > pos) return Math.max(pos, w.extents[i] as number);
      }
      from = w.known;
    }
    return -E.ENXIO;
  }

  /** The first hole offset at or after pos; the image's end counts as one (as lseek's). */
  async nextHole(pos: number): Promise<number> {
    let cur = pos;
    while (cur < this.size()) {
      const w = await this.#window(cur);
      for (let i = 0; i < w.extents.length; i += 2) {
        const start = w.extents[i] as number;
        const end = start + (w.extents[i + 1] as number);
        if (start > cur) return cur;
        cur = Math.max(cur, end);
      }
      if (cur < w.known) return cur;
      cur = Math.max(cur, w.known);
    }
    return this.size();
  }

  async #window(pos: number): Promise<Window> {
    const c = this.#cached;
    if (c !== null && pos >= c.from && pos < c.known) return c;
    const gen = this.#generation;
    const to = Math.min(this.size(), pos + DIFF_WINDOW);
    const r = await this.queue.diff(pos, to - pos);
    const x = r.extents;
    const last = x.length >= 2 ? (x[x.length - 2] as number) + (x[x.length - 1] as number) : pos;
    // A cut list says nothing past its last extent: that part is asked again.
    const w: Window = { from: pos, known: r.truncated ? Math.max(last, pos + 1) : to, extents: x };
    if (gen === this.#generation) this.#cached = w;
    return w;
  }
}
