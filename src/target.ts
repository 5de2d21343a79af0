// The aionbd target: one bdev registry, one NBD server and optional JSON-RPC sockets, with the
// operations SPDK's RPCs perform. The JSON-RPC methods and the embedded API both call these,
// so a bdev made over RPC and one made in-process go through the same code.
import { aioFileSize, createAioBdev, DEFAULT_QUEUE_DEPTH } from './bdev/aio.js';
import type { Bdev } from './bdev/bdev.js';
import { createDelayBdev, updateDelayLatency, type DelayLatencies, type LatencyType } from './bdev/delay.js';
import { describeBdev } from './bdev/describe.js';
import { createErrorBdev, injectError, resumePending, type Injection } from './bdev/error.js';
import { ticksNow, TICK_RATE, type ResetMode } from './bdev/iostat.js';
import { Lvstores, type LvstoreInfo } from './bdev/lvstores.js';
import { createMallocBdev } from './bdev/malloc.js';
import { checkName } from './bdev/names.js';
import { RbdClusters } from './bdev/rbd/cluster.js';
import { openRbd, resizeRbd, type RbdParams } from './bdev/rbd/module.js';
import { createRaid0Bdev, describeRaid, isRaid0Level } from './bdev/raid0.js';
import { BdevRegistry, type AddOptions } from './bdev/registry.js';
import { enableHistogram, getHistogram, setQosLimit, settingsConfig, type HistogramParams } from './bdev/settings.js';
import type { QosLimits } from './bdev/qos.js';
import { createSplitBdevs, splitBaseOf } from './bdev/split.js';
import type { ConfigEntry } from './bdev/types.js';
import { BdevExistsError, BdevInUseError, BdevNotFoundError, ExportNotFoundError, InvalidBdevError } from './errors.js';
import { logger, type Logger } from './log.js';
import type { ListenAddress } from './nbd/address.js';
import { Export } from './nbd/export.js';
import type { KernelDisk, KernelDiskOptions } from './nbd/kernel/disk.js';
import { KernelDisks, type DiskInfo } from './nbd/kernel/disks.js';
import { listenMetrics, type MetricsListener } from './metrics/http.js';
import { NbdServer, type ServerOptions as NbdServerOptions } from './nbd/server.js';
import { applyConfig, type ConfigFile } from './rpc/config.js';
import { RpcDispatcher, type CallContext } from './rpc/dispatcher.js';
import { registerAll } from './rpc/methods/index.js';
import { RpcSocketServer } from './rpc/socket.js';
import { AllowedPaths } from './rpc/allow_path.js';
import type { Registry } from 'prom-client';

export interface AionbdServerOptions {
  log?: Logger;
  /** Kernel AIO queue depth of each AIO bdev (default 128). */
  queueDepth?: number;
  /** Options of the NBD server (payload limit, timeouts, connection limits). */
  nbd?: Omit<NbdServerOptions, 'log'>;
}

export interface AioParams {
  filename: string;
  name: string;
  blockSize?: number | undefined;
  readonly?: boolean | undefined;
  uuid?: string | undefined;
  /** Create the file sparse with this size when missing (never over RPC, as SPDK). */
  size?: number | undefined;
  /** An --allow-path root the file must be opened beneath (RPC callers). */
  within?: string | undefined;
}

export interface DelayParams extends DelayLatencies { name: string; baseBdevName: string; uuid?: string | undefined }
export interface RaidParams { name: string; raidLevel: string; baseBdevs: string[]; stripSizeKb: number; uuid?: string | undefined }
export interface ExportParams { name?: string | undefined; readonly?: boolean | undefined; description?: string | undefined }
export interface ExportInfo { name: string; bdev_name: string; readonly: boolean; description: string; size: number }
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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function checkUuid(u: string | undefined): string | undefined {
  if (u !== undefined && !UUID.test(u)) throw new InvalidBdevError(`"${u}" is not a UUID`);
  return u?.toLowerCase();
}

/** bdevs + NBD exports + JSON-RPC: what `aionbd serve` runs, usable in-process. */
export class Server {
  readonly bdevs = new BdevRegistry();
  /** Logical volume stores, found on new bdevs (examine) or made by createLvstore(). */
  readonly lvstores: Lvstores;
  /** Registered Ceph clusters (bdev_rbd_register_cluster), each one connection shared by its RBD bdevs. */
  readonly rbdClusters = new RbdClusters();
  readonly nbd: NbdServer;
  /** Exports attached to this machine's kernel as /dev/nbdN (nbd_start_disk). */
  readonly disks: KernelDisks;
  readonly log: Logger;
  /** Every JSON-RPC method, callable in-process with call(). */
  readonly rpc = new RpcDispatcher();
  readonly #queueDepth: number;
  readonly #rpcSockets: RpcSocketServer[] = [];
  readonly #metricsListeners: MetricsListener[] = [];
  /** Read at scrape time only: nothing on the I/O path feeds it. Made on first use. */
  #metrics: Promise<Registry> | null = null;
  readonly #resizeWatched = new WeakSet<Bdev>();
  #closing: Promise<void> | null = null;

  constructor(opts: AionbdServerOptions = {}) {
    this.log = opts.log ?? logger();
    this.nbd = new NbdServer({ ...opts.nbd, log: this.log });
    this.disks = new KernelDisks(this.nbd, this.log);
    this.bdevs.writer = (b) => {
      for (const x of this.nbd.exports()) if (x.bdev === b) return `it is exported as "${x.name}"`;
      const dev = this.disks.deviceOf(b);
      return dev !== null ? `it is attached to the kernel as ${dev}` : null;
    };
    this.lvstores = new Lvstores(this.bdevs, this.log);
    this.#queueDepth = opts.queueDepth ?? DEFAULT_QUEUE_DEPTH;
    registerAll(this.rpc, this);
  }

  // ---- bdevs -------------------------------------------------------------------------------

  /**
   * Registers b (claiming opts.claims), or releases it when that fails; then examines it, as
   * SPDK does before a create RPC answers: an lvstore on it comes back with its lvols.
   */
  async #register(b: Bdev, opts: AddOptions = {}): Promise<Bdev> {
    try {
      this.bdevs.add(b, opts);
    } catch (err) {
      await b.close();
      throw err;
    }
    await this.lvstores.examine(b);
    return b;
  }

  async createAio(p: AioParams): Promise<Bdev> {
    checkName(p.name);
    // Before the file is opened (or created): a taken name would only be refused after it.
    if (this.bdevs.has(p.name)) throw new BdevExistsError(p.name);
    const b = createAioBdev({
      filename: p.filename, name: p.name, blockSize: p.blockSize, readonly: p.readonly, uuid: checkUuid(p.uuid),
      size: p.size, within: p.within, queueDepth: this.#queueDepth, log: this.log,
    });
    return this.#register(b);
  }

  /**
   * bdev_aio_rescan: reads the file's size again. A grown file grows the bdev: attached kernel
   * devices get the new size at once, network clients on their next connection. Shrinking is
   * refused while a virtual bdev claims it, and below what connected clients were told unless
   * forced; a file now empty hot-removes the bdev, as SPDK does.
   */
  async rescanAio(name: string, force = false): Promise<void> {
    const b = this.bdevs.get(name);
    const blocks = Math.floor(aioFileSize(b) / b.blockSize);
    if (blocks === b.numBlocks) return;
    if (blocks === 0 && b.claim === null) { await this.bdevs.delete(b.name); return; }
    await this.resizeBdev(b, blocks, force);
  }

  /**
   * Gives `b` a new block count, for modules whose resize is a count (rescan; bdev_rbd_resize,
   * bdev_null_resize): shrinking is checked as #checkShrink says, attached kernel devices are
   * told before this resolves, new network connections see the new size.
   */
  async resizeBdev(b: Bdev, numBlocks: number, force = false): Promise<void> {
    if (numBlocks === b.numBlocks) return;
    this.#checkShrink(b, numBlocks * b.blockSize, force);
    this.log.info({ bdev: b.name, from: b.numBlocks, to: numBlocks }, 'bdev resized');
    b.resize(numBlocks);
    await this.disks.resized();
  }

  /**
   * Refuses to shrink `b` to `bytes` while a virtual bdev claims it (it would not follow), or,
   * unless forced, below the size its connected clients (kernel devices too) were told: they
   * would find blocks they use gone.
   */
  #checkShrink(b: Bdev, bytes: number, force: boolean): void {
    if (bytes >= b.sizeBytes) return;
    if (b.claim !== null) throw new BdevInUseError(b.name, `cannot shrink while the ${b.claim.module} module claims it`);
    const told = this.nbd.sizeToldFor(b);
    if (told > bytes && !force) {
      throw new BdevInUseError(b.name, `connected clients were told it has ${told} bytes; shrinking it to ${bytes} would take blocks `
        + 'they may use: disconnect them first, or force it ("force": true)');
    }
  }

  /** bdev_rbd_create: opens an RBD image (bounded by the cluster's timeouts) as a bdev. */
  async createRbd(p: RbdParams): Promise<Bdev> {
    if (p.name !== undefined) {
      checkName(p.name);
      if (this.bdevs.has(p.name)) throw new BdevExistsError(p.name);
    }
    const b = await openRbd({ ...p, uuid: checkUuid(p.uuid) }, {
      clusters: this.rbdClusters, taken: (n) => this.bdevs.has(n), log: this.log, resize: (x, n) => this.resizeBdev(x, n),
    });
    return this.#register(b);
  }

  /** bdev_rbd_resize: grows the image, then the bdev as resizeBdev does (kernel devices are told). */
  resizeRbd(name: string, newSizeMib: number): Promise<void> { return resizeRbd(this.bdevs.get(name), newSizeMib); }

  async createMalloc(p: { name?: string | undefined; blockSize: number; numBlocks: number; uuid?: string | undefined }): Promise<Bdev> {
    if (p.name !== undefined) checkName(p.name);
    return this.#register(createMallocBdev({ ...p, uuid: checkUuid(p.uuid) }));
  }

  /** SPDK names it EE_<base>; `name` (aionbd's own) chooses another. */
  async createError(baseName: string, opts: { uuid?: string | undefined; name?: string | undefined } = {}): Promise<Bdev> {
    if (opts.name !== undefined) checkName(opts.name);
    const base = this.bdevs.get(baseName);
    return this.#register(createErrorBdev(base, { uuid: checkUuid(opts.uuid), name: opts.name }), { claims: [base] });
  }

  injectError(name: string, j: Injection): void { injectError(this.bdevs.get(name), j); }
  resumePending(name: string): number { return resumePending(this.bdevs.get(name)); }

  async createDelay(p: DelayParams): Promise<Bdev> {
    checkName(p.name);
    const base = this.bdevs.get(p.baseBdevName);
    return this.#register(createDelayBdev(base, { ...p, uuid: checkUuid(p.uuid) }), { claims: [base] });
  }

  updateDelayLatency(name: string, type: LatencyType, us: number): void { updateDelayLatency(this.bdevs.get(name), type, us); }

  async createRaid(p: RaidParams): Promise<Bdev> {
    checkName(p.name);
    if (!isRaid0Level(p.raidLevel)) throw new InvalidBdevError(`raid level "${p.raidLevel}" is not supported (only raid0)`);
    const bases = p.baseBdevs.map((n) => this.bdevs.get(n));
    return this.#register(createRaid0Bdev(bases, { name: p.name, stripSizeKb: p.stripSizeKb, uuid: checkUuid(p.uuid) }), { claims: bases });
  }

  /** bdev_raid_get_bdevs: every raid is "online" (ours never wait for a base). */
  raidBdevs(category: string): Record<string, unknown>[] {
    const raids = this.bdevs.list().filter((b) => b.module === 'raid');
    return category === 'all' || category === 'online' ? raids.map(describeRaid) : [];
  }

  /** bdev_split_create: returns the names of the parts. */
  async createSplit(baseName: string, splitCount: number, splitSizeMb?: number): Promise<string[]> {
    const base = this.bdevs.get(baseName);
    const parts = createSplitBdevs(base, { splitCount, splitSizeMb });
    const added: Bdev[] = [];
    try {
      for (const p of parts) added.push(this.bdevs.add(p, { claims: [base], claimGroup: base.name }));
      for (const p of parts) await this.lvstores.examine(p);
    } catch (err) {
      for (const p of added) await this.bdevs.delete(p.name);
      for (const p of parts) if (!added.includes(p)) await p.close();
      throw err;
    }
    return parts.map((p) => p.name);
  }

  /** bdev_split_delete: deletes every part cut from `baseName`. */
  async deleteSplit(baseName: string): Promise<void> {
    const base = this.bdevs.get(baseName);
    const parts = this.bdevs.list().filter((b) => splitBaseOf(b) === base);
    if (parts.length === 0) throw new BdevNotFoundError(`${baseName}p0`);
    for (const p of parts) await this.bdevs.delete(p.name, 'split');
  }

  // ---- logical volumes --------------------------------------------------------------------

  /** bdev_lvol_create_lvstore: returns the lvstore's UUID. */
  createLvstore(baseName: string, lvsName: string, clusterSize?: number, clearMethod?: 'unmap' | 'write_zeroes' | 'none'): Promise<string> {
    return this.lvstores.create(baseName, lvsName, clusterSize, clearMethod);
  }

  /** bdev_lvol_create: returns the lvol's UUID, which is its bdev name (alias "lvs/lvol"). */
  createLvol(p: { lvsName: string; lvolName: string; sizeMib: number; thin?: boolean | undefined; uuid?: string | undefined }): Promise<string> {
    return this.lvstores.createLvol(p.lvsName, p.lvolName, p.sizeMib, p.thin ?? false, checkUuid(p.uuid));
  }

  getLvstores(filter: { uuid?: string | undefined; lvsName?: string | undefined } = {}): LvstoreInfo[] { return this.lvstores.list(filter); }
  /** bdev_lvol_get_lvols. */
  getLvols(filter: { uuid?: string | undefined; lvsName?: string | undefined } = {}): Record<string, unknown>[] { return this.lvstores.lvols(filter); }
  /** bdev_lvol_delete; a snapshot with clones is refused. */
  deleteLvol(name: string): Promise<void> { return this.lvstores.deleteLvol(name); }

  /**
   * bdev_lvol_resize: attached kernel devices get the new size before this resolves, network
   * clients on their next connection. Shrinking below what connected clients were told needs
   * `force`.
   */
  async resizeLvol(name: string, sizeMib: number, force = false): Promise<void> {
    await this.lvstores.resizeLvol(name, sizeMib, (b, bytes) => this.#checkShrink(b, bytes, force));
    await this.disks.resized();
  }

  /** bdev_lvol_snapshot: returns the snapshot's UUID; the lvol goes on as its clone. */
  snapshotLvol(lvolName: string, snapshotName: string): Promise<string> { return this.lvstores.snapshot(lvolName, snapshotName); }
  /** bdev_lvol_clone: returns the clone's UUID. */
  cloneLvol(snapshotName: string, cloneName: string): Promise<string> { return this.lvstores.clone(snapshotName, cloneName); }
  /** bdev_lvol_inflate: every cluster allocated and its own; no parent. */
  inflateLvol(name: string): Promise<void> { return this.lvstores.inflate(name); }
  /** bdev_lvol_decouple_parent: its parent's clusters copied in; the grandparent becomes its parent. */
  decoupleLvolParent(name: string): Promise<void> { return this.lvstores.decoupleParent(name); }
  /** bdev_lvol_set_read_only. */
  setLvolReadOnly(name: string): Promise<void> { return this.lvstores.setReadOnly(name); }
  deleteLvstore(nameOrUuid: string): Promise<void> { return this.lvstores.deleteStore(nameOrUuid); }

  /** Hot-remove: exports of it close their connections; in-flight I/O completes first. */
  deleteBdev(name: string, module?: string): Promise<void> { return this.bdevs.delete(name, module); }

  getBdevs(name?: string): Record<string, unknown>[] {
    if (name !== undefined) return [describeBdev(this.bdevs.get(name))];
    return this.bdevs.list().map(describeBdev);
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
      const more = (b: Bdev): Record<string, unknown> => (q.latencyHistograms === true ? { latency_histograms: b.stat.histogramsJSON() } : {});
      out = { ...head, bdevs: list.map((b) => ({ name: b.name, ...b.stat.toJSON(), ...more(b) })) };
    }
    for (const b of list) b.stat.reset(q.resetMode ?? 'none');
    return out;
  }

  resetIostat(name: string | undefined, mode: ResetMode): void {
    const list = name !== undefined ? [this.bdevs.get(name)] : this.bdevs.list();
    for (const b of list) b.stat.reset(mode);
  }

  /** bdev_set_qos_limit: limits given are set (0 removes one), the others kept; I/O over them waits, never fails. */
  setQosLimit(name: string, limits: Partial<QosLimits>): void { setQosLimit(this.bdevs.get(name), limits, this.log); }

  /** bdev_enable_histogram: SPDK's per-bdev latency histogram, of every I/O type or one (opc). */
  enableHistogram(name: string, p: HistogramParams): void { enableHistogram(this.bdevs.get(name), p); }

  /** bdev_get_histogram: SPDK's shape (buckets in base64, granularity, min_range, max_range, tsc_rate). */
  getHistogram(name: string): Record<string, unknown> { return getHistogram(this.bdevs.get(name)); }

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
  async metrics(): Promise<string> { return (await this.#registry()).metrics(); }

  // prom-client is loaded only when metrics are asked for, so that `aionbd rpc` and servers
  // without --metrics start without it.
  #registry(): Promise<Registry> {
    this.#metrics ??= import('./metrics/collect.js').then((m) => m.metricsRegistry({
      bdevs: () => this.bdevs.list(),
      exports: () => this.nbd.exports(),
      budget: () => ({ used: this.nbd.budget.used, total: this.nbd.budget.total }),
    }));
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
      name: lend ? exported.name : bdev.name, readonly: p.readonly ?? exported?.readonly ?? false, description: lend ? exported.description : '',
    });
    return this.disks.start(x, p);
  }

  /** nbd_stop_disk: detaches; resolves once the kernel has let go of the device. */
  stopDisk(device: string): Promise<void> { return this.disks.stop(device); }

  /** nbd_get_disks: SPDK's shape, [{ nbd_device, bdev_name }]. */
  getDisks(device?: string): DiskInfo[] { return this.disks.list(device); }

  // ---- configuration -----------------------------------------------------------------------

  /** save_config: SPDK's format, plus an "nbd" subsystem of nbd_export_add entries. */
  saveConfig(): ConfigFile {
    // Clusters first: the RBD bdevs that name them come after.
    const bdev: ConfigEntry[] = this.rbdClusters.configEntries();
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
    return { subsystems: [{ subsystem: 'bdev', config: bdev }, { subsystem: 'nbd', config: nbd }] };
  }

  /**
   * Applies a config (save_config format) entry by entry through the RPC methods. With
   * `allowed`, file paths in it are checked as RPC paths are; without, they are the operator's.
   */
  async loadConfig(cfg: unknown, allowed?: AllowedPaths): Promise<void> {
    const ctx: CallContext = { allowed: allowed ?? null };
    const skipped: string[] = [];
    await applyConfig(cfg, (method, params) => this.rpc.call(method, params, ctx), skipped);
    if (skipped.length > 0) this.log.warn({ subsystems: skipped }, 'config: subsystems aionbd does not have were skipped');
  }

  /** Calls one JSON-RPC method in-process (paths unchecked: the caller is trusted). */
  call(method: string, params?: unknown): Promise<unknown> { return this.rpc.call(method, params, { allowed: null }); }

  // ---- listeners and lifecycle -------------------------------------------------------------

  /** Starts an NBD listener (tcp://HOST:PORT or unix:PATH). */
  listen(addr: ListenAddress | string): Promise<ListenAddress> { return this.nbd.listen(addr); }

  /** Serves JSON-RPC on a unix socket (mode 0600); paths in requests must lie under allowPaths. */
  async listenRpc(path: string, allowPaths: string[]): Promise<void> {
    const s = new RpcSocketServer(this.rpc, { allowed: new AllowedPaths(allowPaths) }, this.log);
    await s.listen(path);
    this.#rpcSockets.push(s);
  }

  /** Stops RPC and NBD (answering requests in flight), then flushes and closes every bdev. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([...this.#rpcSockets.map((s) => s.close()), ...this.#metricsListeners.map((m) => m.close())]);
      // Detached before the connections close: users of the devices get EIO at once, not a
      // dead connection to wait on.
      await this.disks.stopAll();
      await this.nbd.close();
      await this.bdevs.closeAll();
      await this.rbdClusters.closeAll();
      this.lvstores.clear();
    })();
    return this.#closing;
  }
}
