// One I/O on a bdev as a promise, for control paths (metadata, examine). Not for the data
// path: it allocates a BdevIo and a promise per call.
import type { Bdev } from './bdev.js';
import { IoType, newIo } from './types.js';

/** Resolves with the result (0 or -errno). READ/WRITE need `buf` (aligned, at least `length` bytes). */
export function ioOnce(b: Bdev, type: IoType, offset: number, length: number, buf: Buffer | null = null): Promise<number> {
  return new Promise((resolve) => {
    const io = newIo((x) => resolve(x.result));
    io.type = type; io.offset = offset; io.length = length; io.buf = buf;
    b.submit(io);
  });
}

export { IoType };
