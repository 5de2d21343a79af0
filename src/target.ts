// The aionbd target, its core: one bdev registry, one NBD server with its exports, the kernel
// devices, metrics, and the lifecycle of all of them. It knows no bdev module and no JSON-RPC:
// the modules it runs are given to it as descriptors (src/bdev/module.ts), and the JSON-RPC
// layer and the embedded Server (src/server.ts) sit on top of it.
import type { Registry } from 'prom-client';
import type { Bdev } from './bdev/bdev.js';
import { describeBdev } from './bdev/describe.js';
import { ticksNow, TICK_RATE, type ErrnoStatus, type ResetMode } from './bdev/iostat.js';
import type { BdevModule, ModuleContext } from './bdev/module.js';
import { checkName } from './bdev/names.js';
import type { QosLimits } from './bdev/qos.js';
import { BdevRegistry, type AddOptions } from './bdev/registry.js';
import { enableHistogram, getHistogram, setQosLimit, settingsConfig, type HistogramParams } from './bdev/settings.js';
import type { ConfigEntry } from './bdev/types.js';
import { BdevInUseError, ExportNotFoundError, InvalidBdevError } from './errors.js';
import { logger, type Logger } from './log.js';
import { listenMetrics, type MetricsListener } from './metrics/http.js';
import type { ListenAddress } from './nbd/address.js';
import { Export } from './nbd/export.js';
import type { KernelDisk, KernelDiskOptions } from './nbd/kernel/disk.js';
import { KernelDisks, type DiskInfo } from './nbd/kernel/disks.js';
import { NbdServer, type ServerOptions as NbdServerOptions } from './nbd/server.js';

export interface AionbdServerOptions {
  log?: Logger;
  /** Kernel AIO queue depth of each AIO bdev (default: the AIO module's, 128). */
  queueDepth?: number;
  /** Options of the NBD server (payload limit, timeouts, connection limits). */
  nbd?: Omit<NbdServerOptions, 'log'>;
}

export interface TargetOptions extends AionbdServerOptions {
  /** The bdev modules this target runs (their examine hooks, names, save_config entries). */
  modules?: readonly BdevModule[];
}

/** One subsystem of a config file (save_config's format): its entries in the order to apply. */
export interface SubsystemConfig {
  subsystem: string;
  config: ConfigEntry[] | null;
}
/** SPDK's save_config format: {"subsystems": [{"subsystem": "bdev", "config": [{"method", "params"}, ...]}, ...]}. */
export interface ConfigFile {
  subsystems: SubsystemConfig[];
}

export interface ExportParams {
  name?: string | undefined;
  readonly?: boolean | undefined;
  description?: string | undefined;
}
export interface ExportInfo {
  name: string;
  bdev_name: string;
  readonly: boolean;
  description: string;
  size: number;
}
export interface DiskParams extends KernelDiskOptions {
  /** Attach read-only (default: as exported, else writable). */
  readonly?: boolean | undefined;
}
export interface IostatQuery {
  names?: string[] | undefined;
  perChannel?: boolean | undefined;
  resetMode?: ResetMode | undefined;
  /** Add each bdev's latency histograms (aionbd's own field, what `aionbd iostat` reads percentiles from). */
  latencyHistograms?: boolean | undefined;
}

/** bdevs + NBD exports + kernel devices, without the JSON-RPC layer. */
export class Target implements ModuleContext {
  readonly bdevs = new BdevRegistry();
  readonly nbd: NbdServer;
  /** Exports attached to this machine's kernel as /dev/nbdN (nbd_start_disk). */
  readonly disks: KernelDisks;
  readonly log: Logger;
  readonly queueDepth: number | undefined;
  readonly modules: readonly BdevModule[];
  readonly #metricsListeners: MetricsListener[] = [];
  /** Read at scrape time only: nothing on the I/O path feeds it. Made on first use. */
  #metrics: Promise<Registry> | null = null;
  readonly #resizeWatched = new WeakSet<Bdev>();
  #closing: Promise<void> | null = null;

  constructor(opts: TargetOptions = {}) {
    this.log = opts.log ?? logger();
    this.nbd = new NbdServer({ ...opts.nbd, log: this.log });
    this.disks = new KernelDisks(this.nbd, this.log);
    this.bdevs.writer = (b) => {
      for (const x of this.nbd.exports()) if (x.bdev === b) return `it is exported as "${x.name}"`;
      const dev = this.disks.deviceOf(b);
      return dev !== null ? `it is attached to the kernel as ${dev}` : null;
    };
    this.queueDepth = opts.queueDepth;
    this.modules = opts.modules ?? [];
  }

  /** The descriptor of b's module, when this target runs it. */
  moduleOf(b: Bdev): BdevModule | undefined {
    return this.modules.find((m) => m.name === b.module);
  }

  // ---- bdevs -------------------------------------------------------------------------------

  async register(b: Bdev, opts: AddOptions = {}): Promise<Bdev> {
    try {
      this.bdevs.add(b, opts);
    } catch (err) {
      await b.close();
      throw err;
    }
    await this.examine(b);
    return b;
  }

  async examine(b: Bdev): Promise<void> {
    if (this.moduleOf(b)?.startsEmpty === true) return;
    for (const m of this.modules) if (m.examine !== undefined) await m.examine(b, this);
  }

  async resizeBdev(b: Bdev, numBlocks: number, force = false): Promise<void> {
    if (numBlocks === b.numBlocks) return;
    this.checkShrink(b, numBlocks * b.blockSize, force);
    this.log.info({ bdev: b.name, from: b.numBlocks, to: numBlocks }, 'bdev resized');
    b.resize(numBlocks);
    await this.disks.resized();
  }

  // Shrinking under a claim would leave the virtual bdev over it behind; below what connected
  // clients were told, they would find blocks they use gone.
  checkShrink(b: Bdev, bytes: number, force: boolean): void {
    if (bytes >= b.sizeBytes) return;
    if (b.claim !== null) throw new BdevInUseError(b.name, `cannot shrink while the ${b.claim.module} module claims it`);
    const told = this.nbd.sizeToldFor(b);
    if (told > bytes && !force) {
      throw new BdevInUseError(
        b.name,
        `connected clients were told it has ${told} bytes; shrinking it to ${bytes} would take blocks ` +
          'they may use: disconnect them first, or force it ("force": true)',
      );
    }
  }

  sizesChanged(): Promise<void> {
    return this.disks.resized();
  }

  /** Hot-remove: exports of it close their connections; in-flight I/O completes first. */
  deleteBdev(name: string, module?: string): Promise<void> {
    return this.bdevs.delete(name, module);
  }

  getBdevs(name?: string): Record<string, unknown>[] {
    const describe = (b: Bdev): Record<string, unknown> => describeBdev(b, this.moduleOf(b)?.productName);
    if (name !== undefined) return [describe(this.bdevs.get(name))];
    return this.bdevs.list().map(describe);
  }

  #errnoStatus(b: Bdev): ErrnoStatus {
    return this.moduleOf(b)?.errnoStatus ?? 'failed';
  }

  /** bdev_get_iostat: SPDK's shape; the reset mode applies after reading. */
  iostat(q: IostatQuery = {}): Record<string, unknown> {
    const list = q.names !== undefined && q.names.length > 0 ? q.names.map((n) => this.bdevs.get(n)) : [...this.bdevs.list()];
    const head = { tick_rate: TICK_RATE, ticks: ticksNow() };
    let out: Record<string, unknown>;
    if (q.perChannel === true) {
      if (q.names?.length !== 1) throw new InvalidBdevError('per_channel needs exactly one bdev in names');
      const b = list[0] as Bdev;
      // One channel: all I/O runs on the main thread. Error counts are device-wide, as SPDK.
      out = { ...head, name: b.name, channels: [{ thread_id: 1, ...b.stat.toJSON(), io_error: {} }] };
    } else {
      const more = (b: Bdev): Record<string, unknown> =>
        q.latencyHistograms === true ? { latency_histograms: b.stat.histogramsJSON() } : {};
      out = { ...head, bdevs: list.map((b) => ({ name: b.name, ...b.stat.toJSON(this.#errnoStatus(b)), ...more(b) })) };
    }
    for (const b of list) b.stat.reset(q.resetMode ?? 'none');
    return out;
  }

  resetIostat(name: string | undefined, mode: ResetMode): void {
    const list = name !== undefined ? [this.bdevs.get(name)] : this.bdevs.list();
    for (const b of list) b.stat.reset(mode);
  }

  /** bdev_set_qos_limit: limits given are set (0 removes one), the others kept; I/O over them waits, never fails. */
  setQosLimit(name: string, limits: Partial<QosLimits>): void {
    setQosLimit(this.bdevs.get(name), limits, this.log);
  }

  /** bdev_enable_histogram: SPDK's per-bdev latency histogram, of every I/O type or one (opc). */
  enableHistogram(name: string, p: HistogramParams): void {
    enableHistogram(this.bdevs.get(name), p);
  }

  /** bdev_get_histogram: SPDK's shape (buckets in base64, granularity, min_range, max_range, tsc_rate). */
  getHistogram(name: string): Record<string, unknown> {
    return getHistogram(this.bdevs.get(name));
  }

  // ---- metrics -----------------------------------------------------------------------------

  /**
   * Serves Prometheus metrics (GET /metrics) over HTTP on tcp://HOST:PORT, as --metrics does:
   * per-bdev operations, bytes, errors and latency histograms, per-export connections, the
   * memory budget in use, AIO contexts. Resolves with the URL to scrape.
   */
  async listenMetrics(addr: string): Promise<string> {
    const m = await listenMetrics(addr, await this.#registry(), this.log);
    this.#metricsListeners.push(m);
    return m.url;
  }

  /** The metrics, in Prometheus's text format, as the endpoint answers them. */
  async metrics(): Promise<string> {
    return (await this.#registry()).metrics();
  }

  // prom-client is loaded only when metrics are asked for, so that `aionbd rpc` and servers
  // without --metrics start without it.
  #registry(): Promise<Registry> {
    this.#metrics ??= import('./metrics/collect.js').then((m) =>
      m.metricsRegistry({
        bdevs: () => this.bdevs.list(),
        errnoStatus: (b) => this.#errnoStatus(b),
        exports: () => this.nbd.exports(),
        budget: () => ({ used: this.nbd.budget.used, total: this.nbd.budget.total }),
      }),
    );
    return this.#metrics;
  }

  // ---- exports -----------------------------------------------------------------------------

  /** nbd_export_add: exports a bdev (by name, alias or UUID); a claimed bdev is refused. */
  addExport(bdevName: string, p: ExportParams = {}): Export {
    const bdev = this.bdevs.get(bdevName);
    this.bdevs.checkUnclaimed(bdev);
    if (p.name !== undefined) checkName(p.name, 'export name');
    const x = this.nbd.addExport(bdev, { name: p.name ?? bdev.name, readonly: p.readonly ?? false, description: p.description ?? '' });
    if (!this.#resizeWatched.has(bdev)) {
      this.#resizeWatched.add(bdev);
      bdev.onResize(() => this.#refreshExports(bdev));
    }
    return x;
  }

  // An export reads its size when it is made: after a resize the exports are made again, in
  // the same order, so new connections see the new size (established ones keep theirs).
  #refreshExports(bdev: Bdev): void {
    const all = [...this.nbd.exports()];
    if (!all.some((x) => x.bdev === bdev)) return;
    for (const x of all) this.nbd.removeExport(x.name);
    for (const x of all) this.nbd.addExport(x.bdev, { name: x.name, readonly: x.readonly, description: x.description, stats: x.stats });
  }

  /** nbd_export_remove: new clients can no longer open it; established connections run on. */
  removeExport(name: string): void {
    if (!this.nbd.removeExport(name)) throw new ExportNotFoundError(name);
  }

  getExports(name?: string): ExportInfo[] {
    const all = [...this.nbd.exports()].filter((x) => name === undefined || x.name === name);
    if (name !== undefined && all.length === 0) throw new ExportNotFoundError(name);
    return all.map((x) => ({ name: x.name, bdev_name: x.bdev.name, readonly: x.readonly, description: x.description, size: x.size }));
  }

  // ---- kernel devices ---------------------------------------------------------------------

  /**
   * nbd_start_disk: attaches a bdev (by name, alias or UUID) or an export (by name) to this
   * machine's kernel as /dev/nbdN, served in-process over socketpairs. Needs root and the nbd
   * driver. A claimed bdev is refused, as for exports.
   */
  async startDisk(name: string, p: DiskParams = {}): Promise<KernelDisk> {
    const exported = this.nbd.getExport(name);
    const bdev = this.bdevs.find(name) ?? exported?.bdev ?? this.bdevs.get(name);
    this.bdevs.checkUnclaimed(bdev);
    // An export of that name lends its read-only setting; a bare bdev is attached writable. The
    // device gets an export of its own: its size follows the bdev's (the kernel is told).
    const lend = exported !== undefined && exported.bdev === bdev;
    const x = new Export(bdev, {
      name: lend ? exported.name : bdev.name,
      readonly: p.readonly ?? exported?.readonly ?? false,
      description: lend ? exported.description : '',
    });
    return this.disks.start(x, p);
  }

  /** nbd_stop_disk: detaches; resolves once the kernel has let go of the device. */
  stopDisk(device: string): Promise<void> {
    return this.disks.stop(device);
  }

  /** nbd_get_disks: SPDK's shape, [{ nbd_device, bdev_name }]. */
  getDisks(device?: string): DiskInfo[] {
    return this.disks.list(device);
  }

  // ---- configuration -----------------------------------------------------------------------

  /** save_config: SPDK's format, plus an "nbd" subsystem of nbd_export_add entries. */
  saveConfig(): ConfigFile {
    // The modules' own entries first (RBD clusters): the bdevs that name them come after.
    const bdev: ConfigEntry[] = this.modules.flatMap((m) => m.configEntries?.(this) ?? []);
    for (const b of this.bdevs.list()) {
      const e = b.driver.config?.(b) ?? null;
      if (e !== null) bdev.push(e);
      bdev.push(...settingsConfig(b));
    }
    bdev.push({ method: 'bdev_wait_for_examine' });
    const nbd: ConfigEntry[] = [...this.nbd.exports()].map((x) => ({
      method: 'nbd_export_add',
      params: { bdev_name: x.bdev.name, name: x.name, readonly: x.readonly, description: x.description },
    }));
    // As SPDK: one nbd_start_disk per kernel device, so a loaded config attaches them again.
    for (const d of this.disks.list()) nbd.push({ method: 'nbd_start_disk', params: { ...d } });
    return {
      subsystems: [
        { subsystem: 'bdev', config: bdev },
        { subsystem: 'nbd', config: nbd },
      ],
    };
  }

  // ---- listeners and lifecycle -------------------------------------------------------------

  /** Starts an NBD listener (tcp://HOST:PORT or unix:PATH). */
  listen(addr: ListenAddress | string): Promise<ListenAddress> {
    return this.nbd.listen(addr);
  }

  /** Stops metrics and NBD (answering requests in flight), then flushes and closes every bdev. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all(this.#metricsListeners.map((m) => m.close()));
      // Detached before the connections close: users of the devices get EIO at once, not a
      // dead connection to wait on.
      await this.disks.stopAll();
      await this.nbd.close();
      await this.bdevs.closeAll();
      for (const m of this.modules) await m.close?.(this);
    })();
    return this.#closing;
  }
}
