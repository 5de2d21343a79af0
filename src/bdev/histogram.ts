// Latency histograms in SPDK's layout (include/spdk/histogram_data.h): values are split by their
// highest set bit into power-of-two ranges, and each range into 2^granularity equal buckets, so
// the relative width of a bucket stays the same from microseconds to seconds. The bucket array
// is sized once; tally() is a few integer operations and one increment, with no allocation.
// Values are ticks (nanoseconds here: our tick rate is 1e9).

/** SPDK's default granularity: 128 buckets per power of two. */
export const DEFAULT_GRANULARITY = 7;
/** The largest granularity accepted: 4096 buckets per power of two is already finer than any clock here. */
export const MAX_GRANULARITY = 12;

const TWO32 = 2 ** 32;
/** 2^k for k in 0..63, so that shifting a value wider than 32 bits is one division. */
const POW2 = Float64Array.from({ length: 64 }, (_, k) => 2 ** k);

/** Index of the highest set bit of a positive integer below 2^53. */
function highBit(v: number): number {
  return v < TWO32 ? 31 - Math.clz32(v) : 63 - Math.clz32(Math.floor(v / TWO32));
}

/** SPDK's range of a value: 0 holds 0..2^(g+1)-1 one value per bucket, range r >= 1 holds [2^(r+g-1), 2^(r+g)). */
function rangeOf(v: number, granularity: number): number {
  return v < 1 ? 0 : Math.max(0, highBit(v) - granularity + 1);
}

export interface HistogramShape {
  granularity: number;
  minRange: number;
  maxRange: number;
}

export class LatencyHistogram implements HistogramShape {
  readonly granularity: number;
  readonly minRange: number;
  readonly maxRange: number;
  /** Bucket counts, range by range from minRange (whole numbers; exact up to 2^53). */
  readonly counts: Float64Array;
  readonly #mask: number;

  /** Values below minValue count in the first bucket, values at or above maxValue in the last, as in SPDK. */
  constructor(granularity = DEFAULT_GRANULARITY, minValue = 0, maxValue = 2 ** 53) {
    this.granularity = granularity;
    this.#mask = (1 << granularity) - 1;
    this.minRange = rangeOf(minValue, granularity);
    this.maxRange = rangeOf(Math.max(minValue, maxValue - 1), granularity);
    this.counts = new Float64Array((this.maxRange - this.minRange + 1) << granularity);
  }

  /** Counts one value (a whole number of ticks). */
  tally(v: number): void {
    const g = this.granularity;
    let r = rangeOf(v, g);
    let i: number;
    if (r < this.minRange) {
      r = this.minRange;
      i = 0;
    } else if (r > this.maxRange) {
      r = this.maxRange;
      i = this.#mask;
    } else i = r === 0 ? v & this.#mask : Math.floor(v / (POW2[r - 1] as number)) & this.#mask;
    const k = ((r - this.minRange) << g) + i;
    this.counts[k] = (this.counts[k] as number) + 1;
  }

  reset(): void {
    this.counts.fill(0);
  }

  total(): number {
    let n = 0;
    for (let i = 0; i < this.counts.length; i++) n += this.counts[i] as number;
    return n;
  }

  /** The first value past bucket i (SPDK's "bucket start" of the next one). */
  bucketEnd(i: number): number {
    return bucketEnd(this, i);
  }

  /** SPDK's bdev_get_histogram "histogram": the buckets as little-endian uint64, in base64. */
  encode(): string {
    return encodeCounts(this.counts);
  }
}

/** bdev_get_histogram's result: SPDK's keys, the buckets in base64, and the tick rate they count in. */
export function histogramJSON(h: LatencyHistogram, tickRate: number): Record<string, unknown> {
  return { histogram: h.encode(), granularity: h.granularity, min_range: h.minRange, max_range: h.maxRange, tsc_rate: tickRate };
}

/** The first value past bucket i of a histogram of this shape. */
export function bucketEnd(h: HistogramShape, i: number): number {
  const g = h.granularity;
  const per = 2 ** g;
  const r = h.minRange + Math.floor(i / per);
  const j = (i % per) + 1;
  return r === 0 ? j : 2 ** (r + g - 1) + j * 2 ** (r - 1);
}

/** Buckets as little-endian uint64 in base64, as SPDK's RPC sends them. */
export function encodeCounts(counts: Float64Array): string {
  const b = Buffer.allocUnsafe(counts.length * 8);
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i] as number;
    b.writeUInt32LE(n % TWO32, i * 8);
    b.writeUInt32LE(Math.floor(n / TWO32), i * 8 + 4);
  }
  return b.toString('base64');
}

/** The inverse of encodeCounts (counts above 2^53 lose precision, which no real count reaches). */
export function decodeCounts(base64: string): Float64Array {
  const b = Buffer.from(base64, 'base64');
  const out = new Float64Array(Math.floor(b.length / 8));
  for (let i = 0; i < out.length; i++) out[i] = b.readUInt32LE(i * 8) + b.readUInt32LE(i * 8 + 4) * TWO32;
  return out;
}

/**
 * The value below which a fraction q of the counted values lie, read as the end of the bucket
 * that holds the q-th value (an upper bound, at most one bucket wide off); 0 when nothing was counted.
 */
export function quantile(h: HistogramShape, counts: Float64Array, q: number): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i] as number;
  if (total === 0) return 0;
  const want = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i] as number;
    if (seen >= want) return bucketEnd(h, i);
  }
  return bucketEnd(h, counts.length - 1);
}

/**
 * How many values were below `bound` (ticks), for bounds that fall on bucket edges, such as
 * powers of two at or above 2^(granularity+minRange): Prometheus's cumulative "le" buckets.
 */
export function countBelow(h: HistogramShape, counts: Float64Array, bound: number): number {
  let n = 0;
  for (let i = 0; i < counts.length && bucketEnd(h, i) <= bound; i++) n += counts[i] as number;
  return n;
}
