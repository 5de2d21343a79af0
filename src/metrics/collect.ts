// aionbd's metrics for Prometheus (prom-client): everything is read at scrape time from the
// counters the server keeps anyway (IoStat, export and budget counters, /proc), so the I/O
// path makes no prom-client call. Each Server has a registry of its own.
import fs from 'node:fs/promises';
import { Counter, Gauge, Histogram, Registry, type HistogramConfiguration } from 'prom-client';
import type { Bdev } from '../bdev/bdev.js';
import { countBelow, type LatencyHistogram } from '../bdev/histogram.js';
import { TICK_RATE, type ErrnoStatus, type IoStat } from '../bdev/iostat.js';
import { QOS_LIMIT_KEYS } from '../bdev/qos.js';
import type { Export } from '../nbd/export.js';

/** What the metrics are read from. */
export interface MetricsSource {
  bdevs(): readonly Bdev[];
  /** How a bdev's module names its plain -errno failures. */
  errnoStatus(b: Bdev): ErrnoStatus;
  exports(): Iterable<Export>;
  /** The NBD server's memory budget: bytes held by requests in flight, and its size. */
  budget(): { used: number; total: number };
}

type LatencyLabel = 'bdev' | 'type' | 'le';
type HistogramResult = Awaited<ReturnType<Histogram<LatencyLabel>['get']>>;

/** Upper bounds of the latency buckets: powers of two nanoseconds, 1.024 us to 17.2 s (edges of every IoStat bucket). */
const LATENCY_BOUNDS_NS = Array.from({ length: 25 }, (_, i) => 2 ** (10 + i));

/**
 * A histogram whose buckets are already counted (IoStat's, cumulated at scrape time) rather than
 * observed one value at a time: it answers get() itself, with the same name, help and type as a
 * plain prom-client Histogram of its configuration.
 */
class CountedHistogram extends Histogram<LatencyLabel> {
  readonly #shape: Histogram<LatencyLabel>;
  constructor(
    config: HistogramConfiguration<LatencyLabel>,
    private readonly read: () => { labels: { bdev: string; type: string }; h: LatencyHistogram; sumTicks: number }[],
  ) {
    super(config);
    this.#shape = new Histogram({ ...config, registers: [] });
  }

  override async get(): Promise<HistogramResult> {
    const head = await this.#shape.get();
    const name = head.name;
    const values: HistogramResult['values'] = [];
    for (const { labels, h, sumTicks } of this.read()) {
      for (const ns of LATENCY_BOUNDS_NS)
        values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: ns / 1e9 }, value: countBelow(h, h.counts, ns) });
      const count = h.total();
      values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: count });
      values.push({ metricName: `${name}_sum`, labels, value: sumTicks / TICK_RATE });
      values.push({ metricName: `${name}_count`, labels, value: count });
    }
    return { ...head, values };
  }

  /** The registry asks for this form first; ours is the same. */
  getForPromString(): Promise<HistogramResult> {
    return this.get();
  }
}

/** How many AIO contexts this process holds: each io_setup maps one "[aio]" ring. */
async function aioContexts(): Promise<number> {
  const maps = await fs.readFile('/proc/self/maps', 'utf8');
  let n = 0;
  for (let i = maps.indexOf('[aio]'); i >= 0; i = maps.indexOf('[aio]', i + 1)) n++;
  return n;
}

async function sysctl(name: string): Promise<number | null> {
  try {
    return Number((await fs.readFile(`/proc/sys/fs/${name}`, 'utf8')).trim());
  } catch {
    return null; // not Linux, or /proc not mounted: the metric is left out
  }
}

type Field = [string, (s: IoStat, errnoStatus: ErrnoStatus) => number];

const OPS: Field[] = [
  ['read', (s) => s.numReadOps],
  ['write', (s) => s.numWriteOps],
  ['unmap', (s) => s.numUnmapOps],
  ['flush', (s) => s.numFlushOps],
  ['write_zeroes', (s) => s.numWriteZeroesOps],
];
const BYTES: Field[] = [
  ['read', (s) => s.bytesRead],
  ['write', (s) => s.bytesWritten],
  ['unmap', (s) => s.bytesUnmapped],
  ['write_zeroes', (s) => s.bytesZeroed],
];
const ERRORS: Field[] = [
  ['failed', (s, e) => (e === 'failed' ? s.errFailed : 0)],
  ['aio_error', (s, e) => (e === 'aio_error' ? s.errFailed : 0)],
  ['nomem', (s) => s.errNomem],
  ['aborted', (s) => s.errAborted],
  ['miscompare', (s) => s.errMiscompare],
];

/** A counter per bdev and kind, set from IoStat at each scrape (bdev_reset_iostat shows as a counter reset). */
function statCounter(reg: Registry, src: MetricsSource, name: string, help: string, label: string, fields: Field[]): void {
  new Counter({
    name,
    help,
    labelNames: ['bdev', label],
    registers: [reg],
    collect() {
      this.reset();
      for (const b of src.bdevs()) {
        const e = src.errnoStatus(b);
        for (const [kind, get] of fields) this.inc({ bdev: b.name, [label]: kind }, get(b.stat, e));
      }
    },
  });
}

export function metricsRegistry(src: MetricsSource): Registry {
  const reg = new Registry();
  statCounter(reg, src, 'aionbd_bdev_operations_total', 'I/O operations a bdev completed successfully, by type', 'type', OPS);
  statCounter(reg, src, 'aionbd_bdev_bytes_total', 'Bytes a bdev read, wrote, unmapped or zeroed successfully, by type', 'type', BYTES);
  statCounter(reg, src, 'aionbd_bdev_errors_total', 'I/O a bdev failed, by SPDK status (as bdev_get_iostat io_error)', 'status', ERRORS);
  new CountedHistogram(
    {
      name: 'aionbd_bdev_latency_seconds',
      help: 'Latency of successful I/O from submission to completion, by type',
      labelNames: ['bdev', 'type'],
      registers: [reg],
    },
    () =>
      src.bdevs().flatMap((b) =>
        (
          [
            ['read', b.stat.read],
            ['write', b.stat.write],
            ['unmap', b.stat.unmap],
          ] as const
        ).map(([type, l]) => ({ labels: { bdev: b.name, type }, h: l.histogram, sumTicks: l.total })),
      ),
  );
  new Gauge({
    name: 'aionbd_bdev_queue_depth',
    help: 'I/O submitted to a bdev and not yet completed (QoS-held I/O included)',
    labelNames: ['bdev'],
    registers: [reg],
    collect() {
      this.reset();
      for (const b of src.bdevs()) this.set({ bdev: b.name }, b.outstanding);
    },
  });
  new Gauge({
    name: 'aionbd_bdev_qos_held',
    help: 'READ/WRITE waiting for QoS allowance',
    labelNames: ['bdev'],
    registers: [reg],
    collect() {
      this.reset();
      for (const b of src.bdevs()) {
        const l = b.qosLimits;
        if (QOS_LIMIT_KEYS.some((k) => l[k] > 0)) this.set({ bdev: b.name }, b.qosHeld);
      }
    },
  });
  new Gauge({
    name: 'aionbd_bdev_qos_limit',
    help: 'QoS limits set with bdev_set_qos_limit (I/O or MiB per second)',
    labelNames: ['bdev', 'limit'],
    registers: [reg],
    collect() {
      this.reset();
      for (const b of src.bdevs()) {
        const l = b.qosLimits;
        for (const k of QOS_LIMIT_KEYS) if (l[k] > 0) this.set({ bdev: b.name, limit: k }, l[k]);
      }
    },
  });
  new Gauge({
    name: 'aionbd_export_connections',
    help: 'NBD clients in transmission on an export',
    labelNames: ['export', 'bdev'],
    registers: [reg],
    collect() {
      this.reset();
      for (const x of src.exports()) this.set({ export: x.name, bdev: x.bdev.name }, x.stats.connections);
    },
  });
  new Gauge({
    name: 'aionbd_memory_in_flight_bytes',
    help: 'Bytes of request buffers, bounce buffers and queued replies held now (the memory budget in use)',
    registers: [reg],
    collect() {
      this.set(src.budget().used);
    },
  });
  new Gauge({
    name: 'aionbd_memory_budget_bytes',
    help: 'The server-wide memory budget (--memory-budget)',
    registers: [reg],
    collect() {
      this.set(src.budget().total);
    },
  });
  new Gauge({
    name: 'aionbd_aio_contexts',
    help: 'Kernel AIO contexts (io_setup) this process holds',
    registers: [reg],
    async collect() {
      this.set(await aioContexts());
    },
  });
  new Gauge({
    name: 'aionbd_system_aio_events',
    help: 'AIO events reserved system-wide (fs.aio-nr) and the limit (fs.aio-max-nr)',
    labelNames: ['kind'],
    registers: [reg],
    async collect() {
      this.reset();
      const [nr, max] = await Promise.all([sysctl('aio-nr'), sysctl('aio-max-nr')]);
      if (nr !== null) this.set({ kind: 'in_use' }, nr);
      if (max !== null) this.set({ kind: 'limit' }, max);
    },
  });
  return reg;
}
