// A bdev as SPDK's bdev_get_bdevs prints it: same keys, same order.
import type { Bdev } from './bdev.js';
import { IoType } from './types.js';

/** The aliases SPDK lists: the bdev's own, then its UUID when that is not its name. */
export function aliasesOf(b: Bdev): string[] {
  return b.uuid === b.name || b.aliases.includes(b.uuid) ? [...b.aliases] : [...b.aliases, b.uuid];
}

/** @param productName what its module calls its bdevs (the module's descriptor says; default: the module's name) */
export function describeBdev(b: Bdev, productName: string = b.module): Record<string, unknown> {
  const s = (t: IoType): boolean => b.supports(t);
  return {
    name: b.name,
    aliases: aliasesOf(b),
    product_name: productName,
    block_size: b.blockSize,
    num_blocks: b.numBlocks,
    preferred_write_alignment: 0,
    preferred_write_granularity: 0,
    optimal_write_size: 0,
    preferred_unmap_alignment: 0,
    preferred_unmap_granularity: 0,
    uuid: b.uuid,
    assigned_rate_limits: b.qosLimits,
    claimed: b.claim !== null,
    ...(b.claim !== null ? { claim_type: 'exclusive_write' } : {}),
    zoned: false,
    ...(b.optimalIoBoundary > 0 ? { optimal_io_boundary: b.optimalIoBoundary / b.blockSize } : {}),
    supported_io_types: {
      read: s(IoType.Read),
      write: s(IoType.Write),
      unmap: s(IoType.Unmap),
      flush: s(IoType.Flush),
      reset: s(IoType.Reset),
      nvme_admin: false,
      nvme_io: false,
      nvme_io_md: false,
      write_zeroes: s(IoType.WriteZeroes),
      zcopy: false,
      get_zone_info: false,
      zone_management: false,
      zone_append: false,
      compare: false,
      compare_and_write: false,
      abort: false,
      seek_hole: s(IoType.SeekHole),
      seek_data: s(IoType.SeekData),
      copy: false,
      nvme_iov_md: false,
      nvme_nssr: false,
      write_uncorrectable: false,
    },
    driver_specific: b.driver.info(),
  };
}
