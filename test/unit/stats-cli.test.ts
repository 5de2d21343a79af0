// The command-line side of statistics and QoS: rpc.py's forms of the new methods, and the rows
// `aionbd iostat` computes from two bdev_get_iostat samples.
import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../../src/bdev/histogram.js';
import { IoStat, STAT_GRANULARITY } from '../../src/bdev/iostat.js';
import { IoType } from '../../src/bdev/types.js';
import { formatTable, HEADER, readSample, rows } from '../../src/cli/iostat_report.js';
import { paramsFromArgs } from '../../src/cli/rpc_args.js';
import { UsageError } from '../../src/errors.js';

describe('rpc.py forms', () => {
  it('bdev_set_qos_limit NAME --rw-ios-per-sec N ...', () => {
    expect(paramsFromArgs('bdev_set_qos_limit', ['m0', '--rw-ios-per-sec', '20000', '--w-mbytes-per-sec', '0'])).toEqual({
      name: 'm0',
      rw_ios_per_sec: 20000,
      w_mbytes_per_sec: 0,
    });
  });

  it('bdev_enable_histogram takes --histogram/--no-histogram and the older -e/-d, one of them', () => {
    expect(paramsFromArgs('bdev_enable_histogram', ['m0', '--histogram', '-o', 'write'])).toEqual({
      name: 'm0',
      enable: true,
      opc: 'write',
    });
    expect(paramsFromArgs('bdev_enable_histogram', ['m0', '-d'])).toEqual({ name: 'm0', enable: false });
    expect(paramsFromArgs('bdev_enable_histogram', ['-e', 'm0', '--granularity', '5'])).toEqual({
      name: 'm0',
      enable: true,
      granularity: 5,
    });
    expect(() => paramsFromArgs('bdev_enable_histogram', ['m0'])).toThrow(UsageError);
    expect(() => paramsFromArgs('bdev_enable_histogram', ['m0', '-e', '--no-histogram'])).toThrow(UsageError);
  });
});

/** A bdev_get_iostat answer (with latency_histograms) for one bdev whose stats are `s`, at `ticks`. */
function answer(s: IoStat, ticks: number): unknown {
  return { tick_rate: 1e9, ticks, bdevs: [{ name: 'b0', ...s.toJSON(), latency_histograms: s.histogramsJSON() }] };
}

describe('aionbd iostat rows', () => {
  it('rates, mean and p99 of the interval only', () => {
    const s = new IoStat();
    for (let i = 0; i < 100; i++) s.record(IoType.Read, 4096, 0, 0, 5); // 5 ms each, before the interval
    const a = readSample(answer(s, 1e9));
    // In the interval (2 s): 990 reads of 100 us and 10 of 10 ms; 500 writes of 64 KiB at 200 us.
    for (let i = 0; i < 990; i++) s.record(IoType.Read, 4096, 0, 0, 0.1);
    for (let i = 0; i < 10; i++) s.record(IoType.Read, 4096, 0, 0, 10);
    for (let i = 0; i < 500; i++) s.record(IoType.Write, 65536, 0, 0, 0.2);
    s.queueDepth = 3;
    const [r] = rows(a, readSample(answer(s, 3e9)));
    expect(r?.readsPerSec).toBe(500);
    expect(r?.writesPerSec).toBe(250);
    expect(r?.readMiBs).toBeCloseTo((1000 * 4096) / 2 / 2 ** 20, 6);
    expect(r?.writeMiBs).toBeCloseTo((500 * 65536) / 2 / 2 ** 20, 6);
    expect(r?.readAvgUs).toBeCloseTo((990 * 100 + 10 * 10_000) / 1000, 6);
    // The 99th percentile is among the 100 us reads (the 5 ms ones were before): one bucket up at most.
    expect(r?.readP99Us).toBeGreaterThanOrEqual(100);
    expect(r?.readP99Us).toBeLessThanOrEqual(100 * (1 + 2 ** -STAT_GRANULARITY) + 0.1);
    expect(r?.queueDepth).toBe(3);
    expect(r?.avgQueue).toBeCloseTo((990 * 0.1e6 + 10 * 10e6 + 500 * 0.2e6) / 1e9 / 2, 6);
    const table = formatTable(r !== undefined ? [r] : []);
    expect(table[0]?.split(/\s+/)).toEqual(HEADER);
    expect(table[1]).toMatch(/^b0 +500\.0 +250\.0 +1\.95 +15\.63 +/);
  });

  it('after bdev_reset_iostat the interval counts from zero, never negative', () => {
    const s = new IoStat();
    for (let i = 0; i < 50; i++) s.record(IoType.Write, 4096, 0, 0, 1);
    const a = readSample(answer(s, 0));
    s.reset('all');
    for (let i = 0; i < 10; i++) s.record(IoType.Write, 4096, 0, 0, 1);
    const [r] = rows(a, readSample(answer(s, 1e9)));
    expect(r?.writesPerSec).toBe(10);
    expect(r?.writeP99Us).toBeGreaterThanOrEqual(1000);
  });

  it('refuses an answer without histograms (an older server) in one line', () => {
    const s = new IoStat();
    expect(() => readSample({ tick_rate: 1e9, ticks: 0, bdevs: [{ name: 'b0', ...s.toJSON() }] })).toThrow(/latency_histograms/);
    expect(new LatencyHistogram(STAT_GRANULARITY).total()).toBe(0);
  });
});
