// Extents of an export range, one list per metadata context a client selected: base:allocation
// (hole and zero bits) and qemu:allocation-depth (which layer holds the data). Used by
// BLOCK_STATUS and to send the zero ranges of large READs as OFFSET_HOLE chunks.
import type { Bdev } from '../bdev/bdev.js';
import { blockStatus } from '../bdev/block_status.js';
import { BLOCK_HOLE, BLOCK_ZERO, type BlockExtent } from '../bdev/types.js';
import { META_ID_QEMU_ALLOCATION_DEPTH, NBD_STATE_HOLE, NBD_STATE_ZERO } from './constants.js';
import type { Extent } from './replies.js';

/** base:allocation's status bits for a bdev extent. */
function allocationFlags(e: BlockExtent): number {
  return ((e.flags & BLOCK_HOLE) !== 0 ? NBD_STATE_HOLE : 0) | ((e.flags & BLOCK_ZERO) !== 0 ? NBD_STATE_ZERO : 0);
}

/**
 * For each context id, the extents of [offset, offset + length) from offset: at least one, at
 * most `max`, none longer than `maxExtent`. They may end before the range does (the client asks
 * again from there), and the lists need not cover the same length.
 */
export async function contextExtents(
  bdev: Bdev,
  offset: number,
  length: number,
  contexts: readonly number[],
  max: number,
  maxExtent: number,
): Promise<Extent[][]> {
  const ext = await blockStatus(bdev, offset, length);
  return contexts.map((id) => {
    const value = id === META_ID_QEMU_ALLOCATION_DEPTH ? (e: BlockExtent): number => e.depth : allocationFlags;
    const out: Extent[] = [];
    for (const e of ext) {
      const v = value(e);
      for (let left = e.length; left > 0; ) {
        const last = out[out.length - 1];
        if (last !== undefined && last.flags === v && last.length < maxExtent) {
          const n = Math.min(left, maxExtent - last.length);
          last.length += n;
          left -= n;
          continue;
        }
        if (out.length === max) return out;
        const n = Math.min(left, maxExtent);
        out.push({ length: n, flags: v });
        left -= n;
      }
    }
    return out;
  });
}
