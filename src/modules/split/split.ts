// The split bdev (SPDK's vbdev_split): <base>p0 .. <base>p<N-1>, equal consecutive ranges of
// one base bdev. The parts share one claim on the base.
import { createHash } from 'node:crypto';
import { InvalidBdevError } from '../../errors.js';
import { asDriver, Bdev } from '../../bdev/bdev.js';
import { PassThroughDriver } from '../../bdev/passthrough.js';
import type { ConfigEntry } from '../../bdev/types.js';

export interface SplitOptions {
  splitCount: number;
  /** Size of each part in MiB; default: the base divided by splitCount. */
  splitSizeMb?: number | undefined;
}

class SplitDriver extends PassThroughDriver {
  readonly module = 'split';

  constructor(
    base: Bdev,
    readonly index: number,
    offsetBytes: number,
    readonly opts: SplitOptions,
    readonly count: number,
  ) {
    super(base, { shift: offsetBytes });
  }

  info(): Record<string, unknown> {
    return { split: { base_bdev: this.base.name, offset_blocks: this.shift / this.base.blockSize } };
  }

  // One bdev_split_create makes every part; the first part speaks for all of them.
  config(): ConfigEntry | null {
    if (this.index !== 0) return null;
    const params: Record<string, unknown> = { base_bdev: this.base.name, split_count: this.count };
    if (this.opts.splitSizeMb !== undefined && this.opts.splitSizeMb !== 0) params['split_size_mb'] = this.opts.splitSizeMb;
    return { method: 'bdev_split_create', params };
  }
}

/** A UUID that depends only on the base's UUID and the range, so a part keeps it across restarts (as SPDK). */
function derivedUuid(baseUuid: string, offsetBlocks: number, numBlocks: number): string {
  const h = createHash('sha1').update(`split:${baseUuid}:${offsetBlocks}:${numBlocks}`).digest();
  h[6] = ((h[6] as number) & 0x0f) | 0x50; // version 5
  h[8] = ((h[8] as number) & 0x3f) | 0x80; // RFC 4122 variant
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** The parts, not yet registered: the caller registers each with a shared claim on base. */
export function createSplitBdevs(base: Bdev, opts: SplitOptions): Bdev[] {
  const bs = base.blockSize;
  let count = opts.splitCount;
  if (!Number.isInteger(count) || count < 1) throw new InvalidBdevError(`split_count ${count} must be a whole number >= 1`);
  let partBlocks: number;
  if (opts.splitSizeMb !== undefined && opts.splitSizeMb !== 0) {
    const bytes = opts.splitSizeMb * 2 ** 20;
    if (!Number.isInteger(opts.splitSizeMb) || opts.splitSizeMb < 0 || bytes % bs !== 0) {
      throw new InvalidBdevError(`split_size_mb ${opts.splitSizeMb} must be a whole number of MiB and a multiple of the block size`);
    }
    partBlocks = bytes / bs;
    if (partBlocks > base.numBlocks) throw new InvalidBdevError(`split_size_mb ${opts.splitSizeMb} is larger than bdev "${base.name}"`);
    // As SPDK: the count is clamped to what fits.
    count = Math.min(count, Math.floor(base.numBlocks / partBlocks));
  } else {
    partBlocks = Math.floor(base.numBlocks / count);
    if (partBlocks === 0) throw new InvalidBdevError(`bdev "${base.name}" has fewer than ${count} blocks`);
  }
  const parts: Bdev[] = [];
  for (let i = 0; i < count; i++) {
    const offsetBlocks = i * partBlocks;
    parts.push(
      new Bdev(
        {
          name: `${base.name}p${i}`,
          blockSize: bs,
          numBlocks: partBlocks,
          readonly: base.readonly,
          uuid: derivedUuid(base.uuid, offsetBlocks, partBlocks),
          writeCache: base.writeCache,
        },
        new SplitDriver(base, i, offsetBlocks * bs, opts, count),
      ),
    );
  }
  return parts;
}

/** The base a split part was cut from, or null when b is not a split part. */
export function splitBaseOf(b: Bdev): Bdev | null {
  return asDriver(b, SplitDriver)?.base ?? null;
}
