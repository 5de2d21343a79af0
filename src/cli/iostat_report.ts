// What `aionbd iostat` prints: per bdev, the rates and latencies of one interval, from two
// bdev_get_iostat samples (with aionbd's latency histograms) taken that interval apart.
import { RpcError } from '../errors.js';
import { decodeCounts, quantile, type HistogramShape } from '../bdev/histogram.js';
import { isObject } from '../util/is_object.js';

interface Histogram extends HistogramShape {
  counts: Float64Array;
}

export interface BdevSample {
  name: string;
  bytesRead: number;
  numReadOps: number;
  bytesWritten: number;
  numWriteOps: number;
  readLatencyTicks: number;
  writeLatencyTicks: number;
  unmapLatencyTicks: number;
  queueDepth: number;
  read: Histogram;
  write: Histogram;
}

export interface Sample {
  tickRate: number;
  ticks: number;
  bdevs: BdevSample[];
}

export interface Row {
  name: string;
  readsPerSec: number;
  writesPerSec: number;
  readMiBs: number;
  writeMiBs: number;
  /** Microseconds; 0 when there was no such I/O in the interval. */
  readAvgUs: number;
  writeAvgUs: number;
  readP99Us: number;
  writeP99Us: number;
  /** In flight when the second sample was taken. */
  queueDepth: number;
  /** Average in flight over the interval (Little's law: latency summed over the interval's length). */
  avgQueue: number;
}

function num(o: Record<string, unknown>, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new RpcError(`bdev_get_iostat answered without a number in "${key}": is the server an aionbd?`, 0, null);
  return v;
}

function histogram(o: unknown): Histogram {
  if (!isObject(o) || typeof o['histogram'] !== 'string')
    throw new RpcError('bdev_get_iostat answered without latency_histograms: is the server an aionbd of this version?', 0, null);
  return {
    granularity: num(o, 'granularity'),
    minRange: num(o, 'min_range'),
    maxRange: num(o, 'max_range'),
    counts: decodeCounts(o['histogram']),
  };
}

/** Reads a bdev_get_iostat result asked with latency_histograms: true. */
export function readSample(v: unknown): Sample {
  if (!isObject(v) || !Array.isArray(v['bdevs'])) throw new RpcError('bdev_get_iostat answered without a "bdevs" list', 0, null);
  const bdevs = v['bdevs'].map((b: unknown): BdevSample => {
    if (!isObject(b) || typeof b['name'] !== 'string') throw new RpcError('bdev_get_iostat answered a bdev without a name', 0, null);
    const h = b['latency_histograms'];
    return {
      name: b['name'],
      bytesRead: num(b, 'bytes_read'),
      numReadOps: num(b, 'num_read_ops'),
      bytesWritten: num(b, 'bytes_written'),
      numWriteOps: num(b, 'num_write_ops'),
      readLatencyTicks: num(b, 'read_latency_ticks'),
      writeLatencyTicks: num(b, 'write_latency_ticks'),
      unmapLatencyTicks: num(b, 'unmap_latency_ticks'),
      queueDepth: num(b, 'queue_depth'),
      read: histogram(isObject(h) ? h['read'] : undefined),
      write: histogram(isObject(h) ? h['write'] : undefined),
    };
  });
  return { tickRate: num(v, 'tick_rate'), ticks: num(v, 'ticks'), bdevs };
}

// Counters can go back (bdev_reset_iostat, a bdev deleted and made again): then the interval
// counts from zero rather than going negative.
const delta = (a: number, b: number): number => (b >= a ? b - a : b);

function p99Us(a: Histogram, b: Histogram, tickRate: number): number {
  const d = new Float64Array(b.counts.length);
  const same = a.counts.length === b.counts.length && a.granularity === b.granularity && a.minRange === b.minRange;
  let back = false;
  for (let i = 0; i < d.length; i++) {
    d[i] = (b.counts[i] as number) - (same ? (a.counts[i] as number) : 0);
    if ((d[i] as number) < 0) back = true;
  }
  return (quantile(b, back ? b.counts : d, 0.99) / tickRate) * 1e6;
}

/** One row per bdev in both samples, in the order of the second. */
export function rows(prev: Sample, cur: Sample): Row[] {
  const secs = Math.max(1e-9, (cur.ticks - prev.ticks) / cur.tickRate);
  const before = new Map(prev.bdevs.map((b) => [b.name, b]));
  const out: Row[] = [];
  for (const b of cur.bdevs) {
    const a = before.get(b.name);
    if (a === undefined) continue;
    const reads = delta(a.numReadOps, b.numReadOps),
      writes = delta(a.numWriteOps, b.numWriteOps);
    const rTicks = delta(a.readLatencyTicks, b.readLatencyTicks),
      wTicks = delta(a.writeLatencyTicks, b.writeLatencyTicks);
    const uTicks = delta(a.unmapLatencyTicks, b.unmapLatencyTicks);
    const us = (ticks: number, n: number): number => (n > 0 ? (ticks / n / cur.tickRate) * 1e6 : 0);
    out.push({
      name: b.name,
      readsPerSec: reads / secs,
      writesPerSec: writes / secs,
      readMiBs: delta(a.bytesRead, b.bytesRead) / secs / 2 ** 20,
      writeMiBs: delta(a.bytesWritten, b.bytesWritten) / secs / 2 ** 20,
      readAvgUs: us(rTicks, reads),
      writeAvgUs: us(wTicks, writes),
      readP99Us: reads > 0 ? p99Us(a.read, b.read, cur.tickRate) : 0,
      writeP99Us: writes > 0 ? p99Us(a.write, b.write, cur.tickRate) : 0,
      queueDepth: b.queueDepth,
      avgQueue: (rTicks + wTicks + uTicks) / cur.tickRate / secs,
    });
  }
  return out;
}

export const HEADER = ['Device', 'r/s', 'w/s', 'rMiB/s', 'wMiB/s', 'r_avg_us', 'w_avg_us', 'r_p99_us', 'w_p99_us', 'qd', 'aqu'];

function cells(r: Row): string[] {
  const lat = (us: number): string => (us >= 100 ? us.toFixed(0) : us.toFixed(1));
  return [
    r.name,
    r.readsPerSec.toFixed(1),
    r.writesPerSec.toFixed(1),
    r.readMiBs.toFixed(2),
    r.writeMiBs.toFixed(2),
    lat(r.readAvgUs),
    lat(r.writeAvgUs),
    lat(r.readP99Us),
    lat(r.writeP99Us),
    String(r.queueDepth),
    r.avgQueue.toFixed(2),
  ];
}

/** The table: a header, then one line per bdev; the name left-aligned, numbers right-aligned. */
export function formatTable(list: Row[]): string[] {
  const table = [HEADER, ...list.map(cells)];
  const widths = HEADER.map((_, c) => Math.max(...table.map((l) => (l[c] ?? '').length)));
  return table.map((l) =>
    l
      .map((v, c) => (c === 0 ? v.padEnd(widths[c] ?? 0) : v.padStart(widths[c] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}
