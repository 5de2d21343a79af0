// Aligned I/O buffers in power-of-two size classes, reused so that the data path allocates
// nothing once warm. Memory comes from the addon (posix_memalign): its backing store never
// moves, so the kernel may DMA into it while the buffer is in flight.
import { native } from '../native.js';

/** Page alignment satisfies every O_DIRECT memory alignment we meet (512 or 4096). */
export const BUFFER_ALIGN = 4096;
const MIN_CLASS = 12; // 4 KiB
const MAX_CLASS = 31; // 2 GiB, never reached: requests are capped far below
/** Free bytes kept per size class; above this a returned buffer is left to the GC. */
const KEEP_BYTES_PER_CLASS = 64 * 1024 * 1024;
const KEEP_MIN_PER_CLASS = 2;

export class BufferPool {
  readonly #free: Buffer[][] = [];

  constructor() {
    for (let c = 0; c <= MAX_CLASS; c++) this.#free.push([]);
  }

  static classOf(length: number): number {
    return length <= 1 << MIN_CLASS ? MIN_CLASS : 32 - Math.clz32(length - 1);
  }

  /** A buffer of at least `length` bytes (exactly its class size). */
  get(length: number): Buffer {
    const c = BufferPool.classOf(length);
    const list = this.#free[c];
    const b = list?.pop();
    if (b !== undefined) return b;
    return Buffer.from(native().allocAligned(2 ** c, BUFFER_ALIGN));
  }

  put(buf: Buffer): void {
    const c = BufferPool.classOf(buf.length);
    const list = this.#free[c];
    if (list === undefined || 2 ** c !== buf.length) return; // not one of ours
    if (list.length < KEEP_MIN_PER_CLASS || (list.length + 1) * buf.length <= KEEP_BYTES_PER_CLASS) list.push(buf);
  }

  /** Free buffers held, for tests and diagnostics. */
  held(): number { return this.#free.reduce((n, l) => n + l.length, 0); }
}

let shared: BufferPool | undefined;

/** The process-wide pool that connections and bdevs share. */
export function bufferPool(): BufferPool {
  shared ??= new BufferPool();
  return shared;
}
