// One I/O on a bdev as a promise, for control paths (metadata, examine, block status by seeking)
// and the unaligned adapter's bounce I/O. Not for the aligned data path: it allocates a BdevIo
// and a promise per call.
import type { Bdev } from './bdev.js';
import { IoType, newIo } from './types.js';

/**
 * Resolves with the result (0, -errno, or the offset a SEEK found). READ/WRITE need `buf`
 * (aligned, at least `length` bytes); `flags` are IoFlag bits the bdev declares.
 */
export function ioOnce(b: Bdev, type: IoType, offset: number, length: number, buf: Buffer | null = null, flags = 0): Promise<number> {
  return new Promise((resolve) => {
    const io = newIo((x) => resolve(x.result));
    io.type = type;
    io.offset = offset;
    io.length = length;
    io.buf = buf;
    io.flags = flags;
    b.submit(io);
  });
}

export { IoType };
