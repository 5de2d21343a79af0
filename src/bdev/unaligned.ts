// Requests at any byte offset and length, over a bdev that only does whole blocks: READs go
// through a bounce buffer (at most IO_CHUNK, reused piece by piece), WRITEs are
// read-modify-write of the edge blocks under a range lock, in pieces of at most IO_CHUNK
// (two unaligned writes into one block must both survive), WRITE_ZEROES zeroes the edges by RMW
// and the middle natively, and UNMAP is rounded inwards (a hint, so that is allowed).
// Aligned requests pass straight through: the common path pays two modulo operations.
import { constants } from 'node:os';
import type { Bdev } from './bdev.js';
import { bufferPool, IO_CHUNK } from './buffers.js';
import { ioOnce } from './io_once.js';
import { IoFlag, IoType, type BdevIo } from './types.js';

const E = constants.errno;

interface Range {
  start: number;
  end: number;
}

class RangeLocks {
  readonly #held: Range[] = [];
  readonly #waiting: { r: Range; go: () => void }[] = [];

  acquire(r: Range): Promise<void> {
    if (!this.#overlaps(r)) {
      this.#held.push(r);
      return Promise.resolve();
    }
    return new Promise((go) => this.#waiting.push({ r, go }));
  }

  release(r: Range): void {
    this.#held.splice(this.#held.indexOf(r), 1);
    // Wake waiters in arrival order, as long as they do not overlap what is held now.
    for (let i = 0; i < this.#waiting.length; ) {
      const w = this.#waiting[i] as { r: Range; go: () => void };
      if (this.#overlaps(w.r)) {
        i++;
        continue;
      }
      this.#waiting.splice(i, 1);
      this.#held.push(w.r);
      w.go();
    }
  }

  #overlaps(r: Range): boolean {
    return this.#held.some((h) => h.start < r.end && r.start < h.end);
  }
}

export class UnalignedAdapter {
  readonly #locks = new RangeLocks();

  constructor(readonly bdev: Bdev) {}

  /** Like bdev.submit(io), for any offset and length; io.done runs once, later. */
  submit(io: BdevIo): void {
    const bs = this.bdev.blockSize;
    if (
      (io.offset % bs === 0 && io.length % bs === 0) ||
      io.type === IoType.Flush ||
      io.type === IoType.SeekData ||
      io.type === IoType.SeekHole
    ) {
      this.bdev.submit(io);
      return;
    }
    io.pending = true;
    void this.#unaligned(io).then((result) => {
      io.pending = false;
      io.result = result;
      io.done(io);
    });
  }

  async #unaligned(io: BdevIo): Promise<number> {
    const bs = this.bdev.blockSize;
    // What reaches the bdev as a WRITE (edges by read-modify-write) keeps only FUA.
    const fua = io.flags & IoFlag.Fua;
    const start = Math.floor(io.offset / bs) * bs;
    const end = Math.ceil((io.offset + io.length) / bs) * bs;
    switch (io.type) {
      case IoType.Read: {
        // Through a bounce buffer of at most IO_CHUNK, piece by piece.
        const bounce = bufferPool().get(Math.min(end - start, IO_CHUNK));
        try {
          for (let at = start; at < end; at += IO_CHUNK) {
            const n = Math.min(IO_CHUNK, end - at);
            const r = await ioOnce(this.bdev, IoType.Read, at, n, bounce.subarray(0, n));
            if (r !== 0) return r;
            const from = Math.max(at, io.offset);
            const to = Math.min(at + n, io.offset + io.length);
            bounce.copy(io.buf as Buffer, from - io.offset, from - at, to - at);
          }
          return 0;
        } finally {
          bufferPool().put(bounce);
        }
      }
      case IoType.Write: {
        // Pieces that end on block boundaries, so each bounce buffer stays within IO_CHUNK.
        const data = io.buf as Buffer;
        let r = 0;
        for (let at = io.offset; r === 0 && at < io.offset + io.length; ) {
          const next = Math.min(io.offset + io.length, Math.floor(at / bs) * bs + IO_CHUNK);
          r = await this.#rmw(at, next - at, data.subarray(at - io.offset, next - io.offset), fua);
          at = next;
        }
        return r;
      }
      case IoType.WriteZeroes: {
        // Edges by RMW with zeroes, the aligned middle (if any) natively. Writing zeroes into the
        // edges is exactly what a fast zero must not do: refused before anything changes.
        if ((io.flags & IoFlag.FastZero) !== 0) return -E.EOPNOTSUPP;
        const innerStart = Math.ceil(io.offset / bs) * bs;
        const innerEnd = Math.floor((io.offset + io.length) / bs) * bs;
        if (innerEnd <= innerStart) return this.#rmw(io.offset, io.length, null, fua);
        let r = 0;
        // FUA on every piece, as for a WRITE: the acknowledgement covers them all.
        if (innerStart > io.offset) r = await this.#rmw(io.offset, innerStart - io.offset, null, fua);
        if (r === 0 && io.offset + io.length > innerEnd) r = await this.#rmw(innerEnd, io.offset + io.length - innerEnd, null, fua);
        if (r === 0) r = await ioOnce(this.bdev, IoType.WriteZeroes, innerStart, innerEnd - innerStart, null, io.flags);
        return r;
      }
      case IoType.Unmap: {
        const innerStart = Math.ceil(io.offset / bs) * bs;
        const innerEnd = Math.floor((io.offset + io.length) / bs) * bs;
        return innerEnd > innerStart ? ioOnce(this.bdev, IoType.Unmap, innerStart, innerEnd - innerStart, null, io.flags) : 0;
      }
      default:
        return ioOnce(this.bdev, io.type, io.offset, io.length, io.buf, io.flags);
    }
  }

  /** Writes `data` (or zeroes when null) at any offset: reads the partial edge blocks first. */
  async #rmw(offset: number, length: number, data: Buffer | null, flags: number): Promise<number> {
    const bs = this.bdev.blockSize;
    const range = { start: Math.floor(offset / bs) * bs, end: Math.ceil((offset + length) / bs) * bs };
    const size = range.end - range.start;
    await this.#locks.acquire(range);
    const bounce = bufferPool().get(size);
    try {
      let r = 0;
      if (offset > range.start) r = await ioOnce(this.bdev, IoType.Read, range.start, bs, bounce);
      const tail = range.end - bs;
      if (r === 0 && offset + length < range.end && (tail > range.start || offset === range.start)) {
        r = await ioOnce(this.bdev, IoType.Read, tail, bs, bounce.subarray(tail - range.start));
      }
      if (r !== 0) return r;
      if (data === null) bounce.fill(0, offset - range.start, offset - range.start + length);
      else data.copy(bounce, offset - range.start, 0, length);
      return await ioOnce(this.bdev, IoType.Write, range.start, size, bounce, flags);
    } finally {
      bufferPool().put(bounce);
      this.#locks.release(range);
    }
  }
}

const adapters = new WeakMap<Bdev, UnalignedAdapter>();

/** One adapter per bdev, so every connection and export shares its range locks. */
export function unalignedAdapter(bdev: Bdev): UnalignedAdapter {
  let a = adapters.get(bdev);
  if (a === undefined) {
    a = new UnalignedAdapter(bdev);
    adapters.set(bdev, a);
  }
  return a;
}
