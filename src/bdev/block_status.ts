// Block status (allocation) of a bdev range, by whichever means the bdev's module knows it: its
// own blockStatus() (lvol from its cluster maps, malloc from its zero tracking, raid0, split,
// error and delay from their bases), SEEK_DATA/SEEK_HOLE (AIO on a regular file), or not at all
// ("all data", which is always a safe answer). A range is reported as reading zeroes only when
// it does at the moment of the answer; a write still in flight may land after it, as it may
// after a READ. Not the data path: BLOCK_STATUS requests and the hole scans of large READs.
import { constants } from 'node:os';
import type { Bdev } from './bdev.js';
import { ioOnce } from './io_once.js';
import { BLOCK_HOLE, BLOCK_ZERO, IoType, type BlockExtent } from './types.js';

const E = constants.errno;

/** Whether the bdev can tell holes from data (else every answer is "all data"). */
export function hasBlockStatus(b: Bdev): boolean {
  return b.driver.blockStatus !== undefined || (b.supports(IoType.SeekData) && b.supports(IoType.SeekHole));
}

/** Whether the bdev's answers say which layer of a snapshot chain holds the data. */
export function knowsDepth(b: Bdev): boolean {
  return b.driver.knowsDepth?.() ?? false;
}

/** Appends an extent, merged into the last one when both say the same. */
export function pushExtent(out: BlockExtent[], length: number, flags: number, depth: number): void {
  if (length <= 0) return;
  const last = out[out.length - 1];
  if (last !== undefined && last.flags === flags && last.depth === depth) last.length += length;
  else out.push({ length, flags, depth });
}

/** Data, allocated in the bdev itself: what a bdev that cannot tell answers. */
function allData(length: number): BlockExtent[] {
  return [{ length, flags: 0, depth: 1 }];
}

/**
 * Extents covering [offset, offset + length) from offset, at least one; they may end before
 * the range does (ask again from there). Any offset and length: a partly covered block counts
 * whole, so a range is never called zero for the sake of its neighbour.
 */
export async function blockStatus(b: Bdev, offset: number, length: number): Promise<BlockExtent[]> {
  const bs = b.blockSize;
  const start = offset - (offset % bs);
  const end = Math.min(b.sizeBytes, Math.ceil((offset + length) / bs) * bs);
  if (length <= 0 || end <= start || b.closed) return allData(Math.max(length, 0));
  let ext: BlockExtent[];
  try {
    if (b.driver.blockStatus !== undefined) ext = await b.driver.blockStatus(start, end - start);
    else if (hasBlockStatus(b)) ext = await bySeek(b, start, end);
    else ext = allData(end - start);
  } catch {
    // A module that cannot answer now (a failed seek) says nothing wrong by saying "data".
    ext = allData(end - start);
  }
  return clip(ext.length > 0 ? ext : allData(end - start), offset - start, length);
}

/** Drops `head` bytes from the front and cuts the list to `length` bytes. */
function clip(ext: BlockExtent[], head: number, length: number): BlockExtent[] {
  const out: BlockExtent[] = [];
  let skip = head,
    left = length;
  for (const e of ext) {
    if (left <= 0) break;
    let n = e.length;
    if (skip > 0) {
      const d = Math.min(skip, n);
      n -= d;
      skip -= d;
    }
    n = Math.min(n, left);
    if (n > 0) {
      out.push({ length: n, flags: e.flags, depth: e.depth });
      left -= n;
    }
  }
  return out.length > 0 ? out : allData(length);
}

const seek = (b: Bdev, type: IoType, pos: number): Promise<number> => ioOnce(b, type, pos, b.blockSize);

/** Extents from SEEK_DATA/SEEK_HOLE, in at most MAX_SEEKS round trips. */
const MAX_SEEKS = 2048;

async function bySeek(b: Bdev, start: number, end: number): Promise<BlockExtent[]> {
  const bs = b.blockSize;
  const out: BlockExtent[] = [];
  let pos = start;
  for (let n = 0; pos < end && n < MAX_SEEKS; n++) {
    let d = await seek(b, IoType.SeekData, pos);
    if (d === -E.ENXIO)
      d = end; // nothing but hole up to the end of the file
    else if (d < 0) break;
    d = Math.max(pos, d - (d % bs)); // a partial block counts as data
    if (d > pos) {
      const holeEnd = Math.min(d, end);
      pushExtent(out, holeEnd - pos, BLOCK_HOLE | BLOCK_ZERO, 0);
      pos = holeEnd;
      continue;
    }
    let h = await seek(b, IoType.SeekHole, pos);
    if (h === -E.ENXIO) h = end;
    else if (h < 0) break;
    h = Math.min(end, Math.ceil(h / bs) * bs);
    if (h <= pos) h = Math.min(end, pos + bs); // always make progress
    pushExtent(out, h - pos, 0, 1);
    pos = h;
  }
  // What was not answered (a failed seek) is data.
  if (pos < end && out.length === 0) pushExtent(out, end - pos, 0, 1);
  return out;
}
