// Latency histograms: SPDK's bucket layout (so SPDK's histogram readers decode ours), the
// base64 encoding, percentiles, and the power-of-two edges the Prometheus buckets use.
import { describe, expect, it } from 'vitest';
import { bucketEnd, countBelow, decodeCounts, LatencyHistogram, quantile } from '../../src/bdev/histogram.js';
import { IoStat } from '../../src/bdev/iostat.js';
import { IoType } from '../../src/bdev/types.js';

/** The bucket index a value lands in (its only non-zero count). */
function bucketOf(h: LatencyHistogram, v: number): number {
  h.reset();
  h.tally(v);
  return h.counts.indexOf(1);
}

describe('LatencyHistogram (SPDK layout)', () => {
  it('uses one bucket per value below 2^(g+1), then 2^g buckets per power of two', () => {
    const h = new LatencyHistogram(7);
    expect(h.minRange).toBe(0);
    expect(bucketOf(h, 0)).toBe(0);
    expect(bucketOf(h, 127)).toBe(127);
    expect(bucketOf(h, 128)).toBe(128); // range 1, index 0
    expect(bucketOf(h, 255)).toBe(255);
    expect(bucketOf(h, 256)).toBe(256); // range 2: two values per bucket
    expect(bucketOf(h, 257)).toBe(256);
    expect(bucketOf(h, 258)).toBe(257);
    // A value past 2^32 still lands by its highest bit: range 33 - 7 + 1 = 27, index 0.
    expect(bucketOf(h, 2 ** 33)).toBe(27 * 128);
    for (const v of [0, 1, 127, 128, 300, 1000, 123_456, 2 ** 33 + 5]) {
      const i = bucketOf(h, v);
      expect(bucketEnd(h, i)).toBeGreaterThan(v);
      expect(i === 0 ? 0 : bucketEnd(h, i - 1)).toBeLessThanOrEqual(v);
    }
  });

  it('sizes min_range..max_range as SPDK does for 1 us..120 s, and clamps values outside', () => {
    const h = new LatencyHistogram(7, 1000, 120e9);
    expect([h.minRange, h.maxRange]).toEqual([3, 30]);
    expect(h.counts.length).toBe(28 * 128);
    h.tally(5); // below min: first bucket
    h.tally(500e9); // above max: last bucket
    expect(h.counts[0]).toBe(1);
    expect(h.counts[h.counts.length - 1]).toBe(1);
  });

  it('encodes the buckets as little-endian uint64 in base64 and decodes them back', () => {
    const h = new LatencyHistogram(4, 0, 2 ** 20);
    for (let i = 0; i < 1000; i++) h.tally(i * 37);
    const bytes = Buffer.from(h.encode(), 'base64');
    expect(bytes.length).toBe(h.counts.length * 8);
    expect(bytes.readBigUInt64LE(8 * 3)).toBe(BigInt(h.counts[3] as number));
    expect([...decodeCounts(h.encode())]).toEqual([...h.counts]);
  });

  it('reads percentiles as the end of the bucket holding them, within one bucket', () => {
    const h = new LatencyHistogram(4);
    for (let i = 1; i <= 1000; i++) h.tally(i * 1000); // 1 us .. 1 ms, evenly
    const p99 = quantile(h, h.counts, 0.99);
    expect(p99).toBeGreaterThanOrEqual(990_000);
    expect(p99).toBeLessThanOrEqual(990_000 * (1 + 1 / 16) + 1);
    expect(quantile(h, new Float64Array(h.counts.length), 0.99)).toBe(0);
  });

  it('counts exactly below each power of two (the Prometheus "le" edges)', () => {
    const h = new LatencyHistogram(4);
    const values = [900, 1023, 1024, 5000, 70_000, 1e6, 3e9];
    for (const v of values) h.tally(v);
    for (let k = 10; k < 34; k++) expect(countBelow(h, h.counts, 2 ** k)).toBe(values.filter((v) => v < 2 ** k).length);
  });
});

describe('IoStat histograms', () => {
  it('keeps per-type latency histograms, and tallies the enabled one for its type only, failures included', () => {
    const s = new IoStat();
    s.enableHistogram({ ioType: IoType.Write, granularity: 7, minNsec: 1000, maxNsec: 120e9 });
    s.record(IoType.Read, 4096, 0, 0, 0.05); // 50 us
    s.record(IoType.Write, 4096, 0, 0, 0.2); // 200 us
    s.record(IoType.Write, 4096, -5, 0, 0.3); // failed: not in the stats, but in SPDK's histogram
    expect(s.read.histogram.total()).toBe(1);
    expect(s.write.histogram.total()).toBe(1);
    expect(s.enabled?.histogram.total()).toBe(2);
    // Enabling the same histogram again keeps its counts; reset() leaves it alone.
    s.enableHistogram({ ioType: IoType.Write, granularity: 7, minNsec: 1000, maxNsec: 120e9 });
    s.reset('all');
    expect(s.enabled?.histogram.total()).toBe(2);
    expect(s.read.histogram.total()).toBe(0);
    s.enableHistogram(null);
    expect(s.enabled).toBeNull();
  });
});
