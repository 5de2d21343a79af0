// The receive buffer every native connection reads into: one per buffer pool (so one per
// process), taken from the pool while any native connection is open and given back after the
// last one. A read's requests are parsed from it in place before the next read of any
// connection; what a connection cannot take yet is copied out (see native_transport.ts).
import type { BufferPool } from '../bdev/buffers.js';

/** Its size: the requests of one read land here. */
export const RECV_BUFFER = 256 * 1024;

/** The buffer in use for each pool. */
const sharedRecv = new WeakMap<BufferPool, SharedRecv>();

/** One receive buffer per pool, taken from it while any native connection is open. */
export class SharedRecv {
  readonly buf: Buffer;
  #users = 0;
  /** A parse of buf is under way: nothing may read into it, and it may not go back to the pool. */
  busy = false;
  constructor(readonly pool: BufferPool) {
    this.buf = pool.get(RECV_BUFFER);
  }

  static acquire(pool: BufferPool): SharedRecv {
    let r = sharedRecv.get(pool);
    if (r === undefined) {
      r = new SharedRecv(pool);
      sharedRecv.set(pool, r);
    }
    r.#users++;
    return r;
  }

  /** A connection is done with it; the last one gives it back (after a parse under way ends). */
  release(): void {
    this.#users--;
    this.#giveBack();
  }

  endParse(): void {
    this.busy = false;
    this.#giveBack();
  }

  #giveBack(): void {
    if (this.#users > 0 || this.busy || sharedRecv.get(this.pool) !== this) return;
    sharedRecv.delete(this.pool);
    this.pool.put(this.buf);
  }
}
