// Aligned I/O buffers in power-of-two size classes, reused so that the data path allocates
// nothing once warm, and given back when idle so that a burst does not keep its memory.
// Memory comes from the addon (posix_memalign): its backing store never moves, so the kernel may
// DMA into it while the buffer is in flight. A buffer the pool lets go is freed at once
// (detached), not when the collector next runs: an idle process may not collect for minutes.
import { native } from '../native.js';

/** Page alignment satisfies every O_DIRECT memory alignment we meet (512 or 4096). */
export const BUFFER_ALIGN = 4096;
/**
 * The largest buffer the data path takes for one request: larger READs, WRITEs and bounce
 * buffers are carried out in pieces of at most this size, whatever --max-payload allows.
 */
export const IO_CHUNK = 2 * 1024 * 1024;
const MIN_CLASS = 12; // 4 KiB
const MAX_CLASS = 31; // 2 GiB, never reached by the data path (IO_CHUNK)
/** Free bytes kept per size class while busy; above this a returned buffer is freed. */
const KEEP_BYTES_PER_CLASS = 32 * 1024 * 1024;
/** Free bytes a class keeps after it has been idle: enough for a warm restart of small I/O. */
const IDLE_FLOOR_BYTES_PER_CLASS = 1024 * 1024;
const KEEP_MIN_PER_CLASS = 2;
/** A class unused for this long is trimmed to its floor. */
export const POOL_TRIM_IDLE_MS = 1000;

export class BufferPool {
  readonly #free: Buffer[][] = [];
  /** When each class last handed out or took back a buffer (performance.now()). */
  readonly #lastUse: Float64Array;
  #timer: NodeJS.Timeout | null = null;

  constructor(private readonly idleMs = POOL_TRIM_IDLE_MS) {
    for (let c = 0; c <= MAX_CLASS; c++) this.#free.push([]);
    this.#lastUse = new Float64Array(MAX_CLASS + 1);
  }

  static classOf(length: number): number {
    return length <= 1 << MIN_CLASS ? MIN_CLASS : 32 - Math.clz32(length - 1);
  }

  /** The size of the buffer get(length) returns: what a request is charged for it. */
  static sizeFor(length: number): number {
    return 2 ** BufferPool.classOf(length);
  }

  /** A buffer of at least `length` bytes (exactly its class size). */
  get(length: number): Buffer {
    const c = BufferPool.classOf(length);
    const list = this.#free[c];
    this.#lastUse[c] = performance.now();
    const b = list?.pop();
    if (b !== undefined) return b;
    return Buffer.from(native().allocAligned(2 ** c, BUFFER_ALIGN));
  }

  put(buf: Buffer): void {
    const c = BufferPool.classOf(buf.length);
    const list = this.#free[c];
    if (list === undefined || 2 ** c !== buf.length) return; // not one of ours
    this.#lastUse[c] = performance.now();
    if (list.length < KEEP_MIN_PER_CLASS || (list.length + 1) * buf.length <= KEEP_BYTES_PER_CLASS) {
      list.push(buf);
      if (this.#timer === null && list.length * buf.length > IDLE_FLOOR_BYTES_PER_CLASS) this.#arm();
    } else {
      free(buf);
    }
  }

  /** Free buffers held, for tests and diagnostics. */
  held(): number {
    return this.#free.reduce((n, l) => n + l.length, 0);
  }
  /** Free bytes held, for tests and diagnostics. */
  heldBytes(): number {
    return this.#free.reduce((n, l, c) => n + l.length * 2 ** c, 0);
  }

  /** Frees the free buffers of classes idle for `idleMs`, down to a small floor. */
  trim(now = performance.now()): void {
    for (let c = MIN_CLASS; c <= MAX_CLASS; c++) {
      const list = this.#free[c] as Buffer[];
      if (list.length === 0 || now - (this.#lastUse[c] as number) < this.idleMs) continue;
      const keep = Math.min(list.length, Math.floor(IDLE_FLOOR_BYTES_PER_CLASS / 2 ** c));
      while (list.length > keep) free(list.pop() as Buffer);
    }
  }

  #aboveFloor(): boolean {
    return this.#free.some((l, c) => l.length > 0 && l.length * 2 ** c > IDLE_FLOOR_BYTES_PER_CLASS);
  }

  // One unref'd timer while anything is above its floor: an idle process is never kept alive.
  #arm(): void {
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        this.trim();
        if (this.#aboveFloor()) this.#arm();
      },
      Math.max(50, this.idleMs / 2),
    );
    this.#timer.unref();
  }
}

// The pool's buffers are whole allocations from allocAligned (one Buffer over one ArrayBuffer).
function free(buf: Buffer): void {
  const ab = buf.buffer;
  if (ab instanceof ArrayBuffer && buf.byteOffset === 0 && buf.byteLength === ab.byteLength) native().releaseAligned(ab);
}

let shared: BufferPool | undefined;

/** The process-wide pool that connections and bdevs share. */
export function bufferPool(): BufferPool {
  shared ??= new BufferPool();
  return shared;
}
