// The embedded API: a Target running every bdev module, with the JSON-RPC dispatcher made from
// the core's and the modules' method declarations, its sockets, and the module operations as
// methods (createAio, createLvol, ...). It sits on top of everything; nothing imports it but
// the CLI, the kernel rig and src/index.ts.
import type { Bdev } from './bdev/bdev.js';
import { updateDelayLatency, type LatencyType } from './modules/delay/delay.js';
import { injectError, resumePending, type Injection } from './modules/error/error.js';
import type { LvstoreInfo, Lvstores, StoreFilter } from './modules/lvol/lvstores.js';
import type { RbdClusters } from './modules/rbd/cluster.js';
import type { RbdParams } from './modules/rbd/module.js';
import type { CallContext, PathPolicy } from './method.js';
import { createAio, rescanAio, type AioParams } from './modules/aio/ops.js';
import { createUring, rescanUring, type UringParams } from './modules/uring/ops.js';
import { createDelay, type DelayParams } from './modules/delay/ops.js';
import { createError, type ErrorCreateOptions } from './modules/error/ops.js';
import { MODULES } from './modules/index.js';
import { createLvol, lvstoresOf, resizeLvol, type LvolParams } from './modules/lvol/ops.js';
import { createMalloc, type MallocParams } from './modules/malloc/ops.js';
import { createRaid, raidBdevs, type RaidParams } from './modules/raid/ops.js';
import { createRbd, rbdClustersOf, resizeRbd } from './modules/rbd/ops.js';
import { createSplit, deleteSplit } from './modules/split/ops.js';
import { AllowedPaths } from './rpc/allow_path.js';
import { loadConfig } from './rpc/config.js';
import { RpcDispatcher } from './rpc/dispatcher.js';
import { CORE_METHODS } from './rpc/methods/index.js';
import { RpcSocketServer } from './rpc/socket.js';
import { Target, type AionbdServerOptions } from './target.js';

/** bdevs + NBD exports + JSON-RPC: what `aionbd serve` runs, usable in-process. */
export class Server extends Target {
  /** Every JSON-RPC method, callable in-process with call(). */
  readonly rpc = new RpcDispatcher();
  readonly #rpcSockets: RpcSocketServer[] = [];
  #closing: Promise<void> | null = null;

  constructor(opts: AionbdServerOptions = {}) {
    super({ ...opts, modules: MODULES });
    this.rpc.add(CORE_METHODS, this);
    for (const m of MODULES) this.rpc.add(m.methods, this);
  }

  /** Logical volume stores, found on new bdevs (examine) or made by createLvstore(). */
  get lvstores(): Lvstores {
    return lvstoresOf(this);
  }
  /** Registered Ceph clusters (bdev_rbd_register_cluster), each one connection shared by its RBD bdevs. */
  get rbdClusters(): RbdClusters {
    return rbdClustersOf(this);
  }

  // ---- bdev modules ------------------------------------------------------------------------

  createAio(p: AioParams): Promise<Bdev> {
    return createAio(this, p);
  }
  /** bdev_aio_rescan (see rescanAio in the AIO module). */
  rescanAio(name: string, force = false): Promise<void> {
    return rescanAio(this, name, force);
  }
  /** bdev_uring_create: the AIO bdev's file handling over io_uring; UringUnavailableError where the kernel refuses io_uring. */
  createUring(p: UringParams): Promise<Bdev> {
    return createUring(this, p);
  }
  /** bdev_uring_rescan. */
  rescanUring(name: string, force = false): Promise<void> {
    return rescanUring(this, name, force);
  }
  createMalloc(p: MallocParams): Promise<Bdev> {
    return createMalloc(this, p);
  }
  /** SPDK names it EE_<base>; `name` (aionbd's own) chooses another. */
  createError(baseName: string, opts: ErrorCreateOptions = {}): Promise<Bdev> {
    return createError(this, baseName, opts);
  }
  injectError(name: string, j: Injection): void {
    injectError(this.bdevs.get(name), j);
  }
  resumePending(name: string): number {
    return resumePending(this.bdevs.get(name));
  }
  createDelay(p: DelayParams): Promise<Bdev> {
    return createDelay(this, p);
  }
  updateDelayLatency(name: string, type: LatencyType, us: number): void {
    updateDelayLatency(this.bdevs.get(name), type, us);
  }
  createRaid(p: RaidParams): Promise<Bdev> {
    return createRaid(this, p);
  }
  /** bdev_raid_get_bdevs: every raid is "online" (ours never wait for a base). */
  raidBdevs(category: string): Record<string, unknown>[] {
    return raidBdevs(this, category);
  }
  /** bdev_split_create: returns the names of the parts. */
  createSplit(baseName: string, splitCount: number, splitSizeMb?: number): Promise<string[]> {
    return createSplit(this, baseName, splitCount, splitSizeMb);
  }
  /** bdev_split_delete: deletes every part cut from `baseName`. */
  deleteSplit(baseName: string): Promise<void> {
    return deleteSplit(this, baseName);
  }
  /** bdev_rbd_create: opens an RBD image (bounded by the cluster's timeouts) as a bdev. */
  createRbd(p: RbdParams): Promise<Bdev> {
    return createRbd(this, p);
  }
  /** bdev_rbd_resize: grows the image, then the bdev (kernel devices are told). */
  resizeRbd(name: string, newSizeMib: number): Promise<void> {
    return resizeRbd(this, name, newSizeMib);
  }

  // ---- logical volumes --------------------------------------------------------------------

  /** bdev_lvol_create_lvstore: returns the lvstore's UUID. */
  createLvstore(baseName: string, lvsName: string, clusterSize?: number, clearMethod?: 'unmap' | 'write_zeroes' | 'none'): Promise<string> {
    return this.lvstores.create(baseName, lvsName, clusterSize, clearMethod);
  }

  /** bdev_lvol_create: returns the lvol's UUID, which is its bdev name (alias "lvs/lvol"). */
  createLvol(p: LvolParams): Promise<string> {
    return createLvol(this, p);
  }
  getLvstores(filter: StoreFilter = {}): LvstoreInfo[] {
    return this.lvstores.list(filter);
  }
  /** bdev_lvol_get_lvols. */
  getLvols(filter: StoreFilter = {}): Record<string, unknown>[] {
    return this.lvstores.lvols(filter);
  }
  /** bdev_lvol_delete; a snapshot with clones is refused. */
  deleteLvol(name: string): Promise<void> {
    return this.lvstores.deleteLvol(name);
  }
  /** bdev_lvol_resize: kernel devices get the new size first; shrinking below what connected clients were told needs `force`. */
  resizeLvol(name: string, sizeMib: number, force = false): Promise<void> {
    return resizeLvol(this, name, sizeMib, force);
  }
  /** bdev_lvol_snapshot: returns the snapshot's UUID; the lvol goes on as its clone. */
  snapshotLvol(lvolName: string, snapshotName: string): Promise<string> {
    return this.lvstores.snapshot(lvolName, snapshotName);
  }
  /** bdev_lvol_clone: returns the clone's UUID. */
  cloneLvol(snapshotName: string, cloneName: string): Promise<string> {
    return this.lvstores.clone(snapshotName, cloneName);
  }
  /** bdev_lvol_inflate: every cluster allocated and its own; no parent. */
  inflateLvol(name: string): Promise<void> {
    return this.lvstores.inflate(name);
  }
  /** bdev_lvol_decouple_parent: its parent's clusters copied in; the grandparent becomes its parent. */
  decoupleLvolParent(name: string): Promise<void> {
    return this.lvstores.decoupleParent(name);
  }
  /** bdev_lvol_set_read_only. */
  setLvolReadOnly(name: string): Promise<void> {
    return this.lvstores.setReadOnly(name);
  }
  deleteLvstore(nameOrUuid: string): Promise<void> {
    return this.lvstores.deleteStore(nameOrUuid);
  }

  // ---- JSON-RPC ----------------------------------------------------------------------------

  /**
   * Applies a config (save_config format) entry by entry through the RPC methods. With
   * `allowed`, file paths in it are checked as RPC paths are; without, they are the operator's.
   */
  loadConfig(cfg: unknown, allowed?: PathPolicy): Promise<void> {
    return loadConfig(this, cfg, { allowed: allowed ?? null });
  }

  /** Calls one JSON-RPC method in-process (paths unchecked: the caller is trusted). */
  call(method: string, params?: unknown): Promise<unknown> {
    const trusted: CallContext = { allowed: null };
    return this.rpc.call(method, params, trusted);
  }

  /** Serves JSON-RPC on a unix socket (mode 0600); paths in requests must lie under allowPaths. */
  async listenRpc(path: string, allowPaths: string[]): Promise<void> {
    const s = new RpcSocketServer(this.rpc, { allowed: new AllowedPaths(allowPaths) }, this.log);
    await s.listen(path);
    this.#rpcSockets.push(s);
  }

  /** Stops RPC first (no new requests), then everything the target runs. Idempotent. */
  override close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all(this.#rpcSockets.map((s) => s.close()));
      await super.close();
    })();
    return this.#closing;
  }
}
