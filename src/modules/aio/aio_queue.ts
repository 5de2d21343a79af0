// One AIO (or uring) bdev's queue into the shared engine of its kind (aio_engine.ts): its fd, its in-flight cap (the
// queue depth), and the I/O waiting for room under that cap or for a free slot of the engine.
import type { Logger } from '../../log.js';
import { BdevIoMisuseError } from '../../errors.js';
import { Ring } from '../../util/ring.js';
import { attachEngine, type AioEngine, type EngineKind, type EngineQueue } from './aio_engine.js';
import type { BdevIo, DeviceDone } from '../../bdev/types.js';

export class AioQueue implements EngineQueue {
  /** At most this many of its I/Os in the engine at once. */
  readonly depth: number;
  readonly fd: number;
  /** In the engine's list of queues waiting for a slot; set and cleared by the engine. */
  listed = false;
  readonly #engine: AioEngine;
  readonly #done: DeviceDone;
  /** Placed in the engine: queued for io_submit or in flight. */
  #inflight = 0;
  /** I/O waiting for room under the cap or for a slot. */
  readonly #wait = new Ring<BdevIo>();
  #closed = false;

  /** Throws the native OsError (syscall io_setup, io_uring_setup) when this is the kind's first queue and the kernel has no room for it. */
  constructor(
    readonly name: string,
    fd: number,
    depth: number,
    done: DeviceDone,
    log: Logger,
    kind: EngineKind,
  ) {
    this.fd = fd;
    this.depth = depth;
    this.#done = done;
    this.#engine = attachEngine(kind, depth, log);
  }

  get userRing(): boolean {
    return this.#engine.userRing;
  }
  get inflight(): number {
    return this.#inflight;
  }
  /** Engine use: it has I/O waiting and room under its cap. */
  get hungry(): boolean {
    return this.#wait.length > 0 && this.#inflight < this.depth;
  }

  /** READ, WRITE or FLUSH. The bdev layer has checked range, alignment and buffer. */
  push(io: BdevIo): void {
    // Its own waiting I/O goes first, and so do other queues waiting for a slot.
    if (this.#wait.length === 0 && this.#inflight < this.depth && this.#engine.hasFreeSlot()) {
      this.#inflight++;
      this.#engine.place(this, io);
      return;
    }
    this.#wait.push(io);
    if (this.#inflight < this.depth) this.#engine.wantSlot(this);
  }

  /** Engine use: the oldest waiting I/O, which takes a slot now. */
  nextWaiting(): BdevIo {
    this.#inflight++;
    return this.#wait.shift();
  }

  /** Engine use: one of its I/Os completed with result (0 or -errno). */
  settle(io: BdevIo, result: number): void {
    this.#inflight--;
    if (this.#wait.length > 0) this.#engine.wantSlot(this);
    this.#done(io, result);
  }

  /**
   * Leaves the engine (the last queue destroys it). Called only when nothing of this queue is
   * in flight or waiting: the bdev closes its fd after this, and the shared contexts cannot be
   * io_destroy'ed to wait for one bdev's I/O. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    if (this.#inflight > 0 || this.#wait.length > 0)
      throw new BdevIoMisuseError(
        this.name,
        `in the ${this.#engine.kind.label} engine at close (${this.#inflight} placed, ${this.#wait.length} waiting)`,
      );
    this.#closed = true;
    this.#engine.release(this.depth);
  }
}
