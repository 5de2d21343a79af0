// Per-bdev I/O statistics as SPDK's bdev_get_iostat reports them, kept in plain number fields
// so that recording a completion allocates nothing.
import { constants } from 'node:os';
import { ESHUTDOWN } from '../util/errno.js';
import { DEFAULT_GRANULARITY, histogramJSON, LatencyHistogram } from './histogram.js';
import { IoType } from './types.js';

const E = constants.errno;

/** Latencies are kept in nanosecond ticks (tick_rate 1e9), as SPDK reports ticks and a rate. */
export const TICK_RATE = 1_000_000_000;

/** What bdev_get_iostat / bdev_reset_iostat may clear. */
export type ResetMode = 'all' | 'maxmin' | 'error' | 'none';

/** SPDK's status names that key io_error. */
export type ErrorStatus = 'failed' | 'aio_error' | 'nomem' | 'aborted' | 'miscompare';
/** The status a plain -errno failure is counted under: its module says which (SPDK's AIO module: aio_error). */
export type ErrnoStatus = 'failed' | 'aio_error';

/**
 * The always-on latency histograms behind `aionbd iostat`'s p99 and the Prometheus histograms:
 * 16 buckets per power of two (each at most 1/16 of its values wide), up to 2^37 ns (137 s).
 */
export const STAT_GRANULARITY = 4;
const STAT_MAX_TICKS = 2 ** 37;

class Latency {
  total = 0;
  max = 0;
  /** 0 = none yet: SPDK keeps UINT64_MAX and prints it as 0. */
  min = 0;
  readonly histogram = new LatencyHistogram(STAT_GRANULARITY, 0, STAT_MAX_TICKS);
  add(ticks: number): void {
    this.total += ticks;
    if (ticks > this.max) this.max = ticks;
    if (this.min === 0 || ticks < this.min) this.min = ticks;
    this.histogram.tally(ticks);
  }
  resetMaxMin(): void {
    this.max = 0;
    this.min = 0;
  }
}

/** What bdev_enable_histogram asks for: SPDK's histogram of one bdev, of every I/O type or one. */
export interface HistogramOptions {
  /** Only I/O of this type is counted; null: every type. */
  readonly ioType: IoType | null;
  readonly granularity: number;
  /** Latencies below count in the first bucket, those at or above maxNsec in the last. */
  readonly minNsec: number;
  readonly maxNsec: number;
}

/** SPDK's RPC defaults (bdev_rpc.c): granularity 7, from 1 us to 120 s. */
export const HISTOGRAM_DEFAULTS: Omit<HistogramOptions, 'ioType'> = { granularity: DEFAULT_GRANULARITY, minNsec: 1000, maxNsec: 120e9 };

export interface EnabledHistogram extends HistogramOptions {
  readonly histogram: LatencyHistogram;
}

export class IoStat {
  bytesRead = 0;
  numReadOps = 0;
  bytesWritten = 0;
  numWriteOps = 0;
  bytesUnmapped = 0;
  numUnmapOps = 0;
  bytesCopied = 0;
  numCopyOps = 0;
  /** Not counted by SPDK; kept because an NBD server is often asked about them. */
  numFlushOps = 0;
  numWriteZeroesOps = 0;
  bytesZeroed = 0;
  readonly read = new Latency();
  readonly write = new Latency();
  readonly unmap = new Latency();
  readonly copy = new Latency();
  /**
   * Failed completions per SPDK status, device-wide. errFailed counts plain -errno failures,
   * which io_error names as the bdev's module says (failed, or aio_error).
   */
  errFailed = 0;
  errNomem = 0;
  errAborted = 0;
  errMiscompare = 0;
  /** I/O submitted and not yet completed. */
  queueDepth = 0;
  /** bdev_enable_histogram's histogram; null while disabled. Not cleared by reset(), as in SPDK. */
  enabled: EnabledHistogram | null = null;

  /**
   * bdev_enable_histogram (null: disable). Enabling the same histogram again keeps what it
   * counted, as SPDK does; another type or shape starts a new one.
   */
  enableHistogram(o: HistogramOptions | null): void {
    const e = this.enabled;
    if (o === null) {
      this.enabled = null;
      return;
    }
    if (e !== null && e.ioType === o.ioType && e.granularity === o.granularity && e.minNsec === o.minNsec && e.maxNsec === o.maxNsec)
      return;
    this.enabled = { ...o, histogram: new LatencyHistogram(o.granularity, o.minNsec, o.maxNsec) };
  }

  get ioErrors(): number {
    return this.errFailed + this.errNomem + this.errAborted + this.errMiscompare;
  }

  record(type: IoType, bytes: number, result: number, startMs: number, nowMs: number): void {
    const ticks = Math.round((nowMs - startMs) * 1e6);
    // SPDK tallies every completion, failed ones too, in the enabled histogram.
    const h = this.enabled;
    if (h !== null && (h.ioType === null || h.ioType === type)) h.histogram.tally(ticks);
    if (result < 0) {
      this.#error(result);
      return;
    }
    switch (type) {
      case IoType.Read:
        this.bytesRead += bytes;
        this.numReadOps++;
        this.read.add(ticks);
        break;
      case IoType.Write:
        this.bytesWritten += bytes;
        this.numWriteOps++;
        this.write.add(ticks);
        break;
      case IoType.Unmap:
        this.bytesUnmapped += bytes;
        this.numUnmapOps++;
        this.unmap.add(ticks);
        break;
      case IoType.Flush:
        this.numFlushOps++;
        break;
      case IoType.WriteZeroes:
        this.numWriteZeroesOps++;
        this.bytesZeroed += bytes;
        break;
      default:
        break;
    }
  }

  #error(result: number): void {
    switch (-result) {
      case E.ENOMEM:
        this.errNomem++;
        break;
      case E.ECANCELED:
      case ESHUTDOWN:
        this.errAborted++;
        break;
      case E.EILSEQ:
        this.errMiscompare++;
        break;
      default:
        this.errFailed++;
    }
  }

  reset(mode: ResetMode): void {
    if (mode === 'none') return;
    if (mode === 'error' || mode === 'all') {
      this.errFailed = 0;
      this.errNomem = 0;
      this.errAborted = 0;
      this.errMiscompare = 0;
    }
    if (mode === 'maxmin' || mode === 'all') for (const l of [this.read, this.write, this.unmap, this.copy]) l.resetMaxMin();
    if (mode !== 'all') return;
    this.bytesRead = 0;
    this.numReadOps = 0;
    this.bytesWritten = 0;
    this.numWriteOps = 0;
    this.bytesUnmapped = 0;
    this.numUnmapOps = 0;
    this.bytesCopied = 0;
    this.numCopyOps = 0;
    this.numFlushOps = 0;
    this.numWriteZeroesOps = 0;
    this.bytesZeroed = 0;
    for (const l of [this.read, this.write, this.unmap, this.copy]) {
      l.total = 0;
      l.histogram.reset();
    }
  }

  /**
   * aionbd's own addition to bdev_get_iostat (asked for with latency_histograms: true): the
   * always-on latency histograms of reads, writes and unmaps, each in bdev_get_histogram's shape,
   * so that a client can subtract two samples and read percentiles of the interval.
   */
  histogramsJSON(): Record<string, unknown> {
    return {
      read: histogramJSON(this.read.histogram, TICK_RATE),
      write: histogramJSON(this.write.histogram, TICK_RATE),
      unmap: histogramJSON(this.unmap.histogram, TICK_RATE),
    };
  }

  /**
   * The counters in SPDK's field order (then ours), as bdev_get_iostat prints them.
   * @param errnoStatus how io_error names plain -errno failures (the module's choice)
   */
  toJSON(errnoStatus: ErrnoStatus = 'failed'): Record<string, unknown> {
    const io_error: Record<string, number> = {};
    // SPDK lists only the statuses that occurred.
    if (this.errFailed > 0) io_error[errnoStatus] = this.errFailed;
    if (this.errNomem > 0) io_error['nomem'] = this.errNomem;
    if (this.errAborted > 0) io_error['aborted'] = this.errAborted;
    if (this.errMiscompare > 0) io_error['miscompare'] = this.errMiscompare;
    return {
      bytes_read: this.bytesRead,
      num_read_ops: this.numReadOps,
      bytes_written: this.bytesWritten,
      num_write_ops: this.numWriteOps,
      bytes_unmapped: this.bytesUnmapped,
      num_unmap_ops: this.numUnmapOps,
      bytes_copied: this.bytesCopied,
      num_copy_ops: this.numCopyOps,
      read_latency_ticks: this.read.total,
      max_read_latency_ticks: this.read.max,
      min_read_latency_ticks: this.read.min,
      write_latency_ticks: this.write.total,
      max_write_latency_ticks: this.write.max,
      min_write_latency_ticks: this.write.min,
      unmap_latency_ticks: this.unmap.total,
      max_unmap_latency_ticks: this.unmap.max,
      min_unmap_latency_ticks: this.unmap.min,
      copy_latency_ticks: this.copy.total,
      max_copy_latency_ticks: this.copy.max,
      min_copy_latency_ticks: this.copy.min,
      io_error,
      num_flush_ops: this.numFlushOps,
      num_write_zeroes_ops: this.numWriteZeroesOps,
      bytes_zeroed: this.bytesZeroed,
      queue_depth: this.queueDepth,
    };
  }
}

/** The current tick count (nanoseconds of a monotonic clock), for the "ticks" field. */
export function ticksNow(): number {
  return Number(process.hrtime.bigint());
}
