// Allocation extents of a bdev range, from SEEK_DATA/SEEK_HOLE through the bdev layer. Used by
// BLOCK_STATUS (base:allocation) and to send holes of large READs as OFFSET_HOLE chunks.
import { constants } from 'node:os';
import type { Bdev } from '../bdev/bdev.js';
import { IoType, type BdevIo } from '../bdev/types.js';
import { NBD_STATE_HOLE, NBD_STATE_ZERO } from './constants.js';
import type { Extent } from './replies.js';

const E = constants.errno;

function seek(bdev: Bdev, io: BdevIo, type: IoType, pos: number): Promise<number> {
  return new Promise((resolve) => {
    io.done = (x) => resolve(x.result);
    io.type = type;
    io.offset = pos;
    io.length = bdev.blockSize;
    io.buf = null;
    bdev.submit(io);
  });
}

/**
 * Extents covering [offset, offset+length) from the start, at most `max` of them (they may end
 * before the range does: the client asks again). Without seek support, or when a seek fails,
 * the answer is "all data", which is always safe.
 */
export async function mapExtents(bdev: Bdev, io: BdevIo, offset: number, length: number, max: number, maxExtent: number): Promise<Extent[]> {
  const end = offset + length;
  const bs = bdev.blockSize;
  if (!bdev.supports(IoType.SeekData) || !bdev.supports(IoType.SeekHole)) return split([{ length, flags: 0 }], maxExtent, max);
  const out: Extent[] = [];
  let pos = offset;
  while (pos < end && out.length < max) {
    const aligned = pos - (pos % bs);
    let d = await seek(bdev, io, IoType.SeekData, aligned);
    if (d === -E.ENXIO) d = end;           // nothing but hole up to the end of the file
    else if (d < 0) return fallback(out, pos, end, maxExtent, max);
    d = Math.max(pos, d - (d % bs));       // a partial block counts as data
    if (d > pos) {
      const holeEnd = Math.min(d, end);
      push(out, holeEnd - pos, NBD_STATE_HOLE | NBD_STATE_ZERO);
      pos = holeEnd;
      continue;
    }
    let h = await seek(bdev, io, IoType.SeekHole, aligned);
    if (h === -E.ENXIO) h = end;
    else if (h < 0) return fallback(out, pos, end, maxExtent, max);
    h = Math.min(end, Math.ceil(h / bs) * bs);
    if (h <= pos) h = Math.min(end, pos + bs); // always make progress
    push(out, h - pos, 0);
    pos = h;
  }
  return split(out, maxExtent, max);
}

function push(out: Extent[], length: number, flags: number): void {
  const last = out[out.length - 1];
  if (last !== undefined && last.flags === flags) last.length += length;
  else out.push({ length, flags });
}

function fallback(out: Extent[], pos: number, end: number, maxExtent: number, max: number): Extent[] {
  push(out, end - pos, 0);
  return split(out, maxExtent, max);
}

/** Compact replies carry 32-bit extent lengths: cut longer ones (at an aligned size). */
function split(list: Extent[], maxExtent: number, max: number): Extent[] {
  const out: Extent[] = [];
  for (const e of list) {
    let left = e.length;
    while (left > 0 && out.length < max) {
      const n = Math.min(left, maxExtent);
      out.push({ length: n, flags: e.flags });
      left -= n;
    }
  }
  return out;
}
