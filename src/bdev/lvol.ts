// Logical volumes (SPDK's lvol, in our own on-disk format: see lvol_format.ts). An lvstore
// claims its base bdev and cuts its data region into clusters; each lvol is a bdev named by
// its UUID with the alias "<lvstore>/<lvol>", thick (every cluster allocated at creation) or
// thin (a cluster is allocated, zeroed and recorded on its first write; until then it reads as
// zeroes). Metadata is written on every change, so lvstores and lvols come back when their
// base bdev is created again (examine).
import { randomUUID } from 'node:crypto';
import { constants } from 'node:os';
import { BdevExistsError, BdevInUseError, BdevWrongModuleError, InvalidBdevError, LvstoreExistsError, LvstoreNotFoundError, NoSpaceError, SystemError } from '../errors.js';
import type { Logger } from '../log.js';
import { Bdev } from './bdev.js';
import { bufferPool } from './buffers.js';
import { ChildPool, type ChildIo } from './child_io.js';
import { ioOnce } from './io_once.js';
import { decodeHeader, decodeMeta, HEADER_LEN, slotSizeFor, type LvolMeta, type LvstoreMeta } from './lvol_format.js';
import { Lvstore } from './lvstore.js';
import { checkName } from './names.js';
import type { BdevRegistry } from './registry.js';
import { IoType, type BdevDriver, type BdevIo, type Complete } from './types.js';

const E = constants.errno;
const MiB = 2 ** 20;
export const DEFAULT_CLUSTER_SIZE = 4 * MiB;

interface Task { parent: BdevIo | null; remaining: number; result: number }

class LvolDriver implements BdevDriver {
  readonly module = 'lvol';
  readonly #children = new ChildPool((c) => this.#childDone(c));
  readonly #tasks: Task[] = [];
  readonly #freeTasks: number[] = [];
  #complete: Complete | null = null;

  constructor(readonly store: Lvstore, readonly meta: LvolMeta) {}

  supports(type: IoType): boolean {
    if (type === IoType.Read || type === IoType.Write || type === IoType.Unmap || type === IoType.WriteZeroes) return true;
    return type === IoType.Flush && this.store.base.supports(IoType.Flush);
  }

  submit(io: BdevIo, complete: Complete): void {
    this.#complete = complete;
    if (io.type === IoType.Flush) {
      const t = this.#task(io, 1);
      const c = this.#children.get(io);
      c.tag = t; c.type = IoType.Flush; c.offset = 0; c.length = 0; c.buf = null; c.fua = false; c.noHole = false;
      this.store.base.submit(c);
      return;
    }
    const cs = this.store.meta.cluster_size;
    const first = Math.floor(io.offset / cs), last = Math.floor((io.offset + io.length - 1) / cs);
    const t = this.#task(io, last - first + 1);
    let pos = 0;
    for (let k = first; k <= last; k++) {
      const inCluster = k === first ? io.offset % cs : 0;
      const len = Math.min(cs - inCluster, io.length - pos);
      this.#piece(io, t, k, inCluster, pos, len);
      pos += len;
    }
  }

  #piece(io: BdevIo, t: number, k: number, inCluster: number, pos: number, len: number): void {
    const cl = this.meta.clusters[k] ?? -1;
    if (cl >= 0) { this.#toBase(io, t, cl, inCluster, pos, len); return; }
    switch (io.type) {
      case IoType.Read:
        // A cluster never written reads as zeroes.
        (io.buf as Buffer).fill(0, pos, pos + len);
        this.#pieceDone(t, 0);
        return;
      case IoType.Write:
        this.#allocate(k).then((c) => this.#toBase(io, t, c, inCluster, pos, len), (err: unknown) => {
          this.#pieceDone(t, err instanceof NoSpaceError ? -E.ENOSPC : -E.EIO);
        });
        return;
      default:
        // UNMAP / WRITE_ZEROES of an unallocated cluster: it already reads as zeroes.
        this.#pieceDone(t, 0);
    }
  }

  // Slow path, once per cluster of a thin lvol: zero it, record it, then let the write through.
  #allocate(k: number): Promise<number> {
    const key = `${this.meta.uuid}:${k}`;
    const pending = this.store.allocating.get(key);
    if (pending !== undefined) return pending;
    const p = (async () => {
      const [c] = this.store.take(1) as [number];
      try {
        await this.store.zero([c]);
        this.meta.clusters[k] = c;
        await this.store.persist();
        return c;
      } catch (err) {
        this.meta.clusters[k] = -1;
        this.store.give([c]);
        throw err;
      } finally {
        this.store.allocating.delete(key);
      }
    })();
    this.store.allocating.set(key, p);
    return p;
  }

  #toBase(io: BdevIo, t: number, cluster: number, inCluster: number, pos: number, len: number): void {
    const c = this.#children.get(io);
    c.tag = t; c.type = io.type; c.offset = this.store.offsetOf(cluster) + inCluster; c.length = len;
    c.fua = io.fua; c.noHole = io.noHole;
    c.buf = io.buf === null ? null : pos === 0 && len === io.length ? io.buf : io.buf.subarray(pos, pos + len);
    this.store.base.submit(c);
  }

  #task(parent: BdevIo, pieces: number): number {
    let t = this.#freeTasks.pop();
    if (t === undefined) { t = this.#tasks.length; this.#tasks.push({ parent: null, remaining: 0, result: 0 }); }
    const task = this.#tasks[t] as Task;
    task.parent = parent; task.remaining = pieces; task.result = 0;
    return t;
  }

  #childDone(c: ChildIo): void {
    const t = c.tag, r = c.result;
    this.#children.put(c);
    this.#pieceDone(t, r);
  }

  #pieceDone(t: number, result: number): void {
    const task = this.#tasks[t] as Task;
    if (result < 0 && task.result === 0) task.result = result;
    if (--task.remaining > 0) return;
    const parent = task.parent as BdevIo;
    task.parent = null;
    this.#freeTasks.push(t);
    (this.#complete as Complete)(parent, task.result);
  }

  info(): Record<string, unknown> {
    return {
      lvol: {
        lvol_store_uuid: this.store.uuid, base_bdev: this.store.base.name, thin_provision: this.meta.thin,
        num_allocated_clusters: this.meta.clusters.filter((c) => c >= 0).length, snapshot: false, clone: false,
      },
    };
  }

  // Nothing in save_config: lvols come back from their base's metadata, as in SPDK.
  config(): null { return null; }

  destruct(): Promise<void> { return Promise.resolve(); }
}

function lvolBdev(store: Lvstore, meta: LvolMeta): Bdev {
  return new Bdev({
    name: meta.uuid, aliases: [`${store.name}/${meta.name}`], uuid: meta.uuid, blockSize: store.meta.block_size,
    numBlocks: (meta.clusters.length * store.meta.cluster_size) / store.meta.block_size, readonly: false,
    writeCache: store.base.writeCache, optimalIoBoundary: store.meta.cluster_size,
  }, new LvolDriver(store, meta));
}

export interface LvstoreInfo {
  uuid: string; name: string; base_bdev: string; total_data_clusters: number; free_clusters: number;
  block_size: number; cluster_size: number; max_growable_size: number;
}

/** The lvstores of one registry: create, examine (find on a new bdev), lvols, delete. */
export class Lvstores {
  readonly #stores: Lvstore[] = [];

  constructor(private readonly registry: BdevRegistry, private readonly log: Logger) {}

  find(nameOrUuid: string): Lvstore {
    const s = this.#stores.find((x) => x.name === nameOrUuid || x.uuid === nameOrUuid);
    if (s === undefined) throw new LvstoreNotFoundError(nameOrUuid);
    return s;
  }

  list(filter: { uuid?: string | undefined; lvsName?: string | undefined } = {}): LvstoreInfo[] {
    const pick = filter.uuid ?? filter.lvsName;
    const stores = pick === undefined ? this.#stores : [this.find(pick)];
    return stores.map((s) => ({
      uuid: s.uuid, name: s.name, base_bdev: s.base.name, total_data_clusters: s.meta.total_clusters,
      free_clusters: s.freeClusters, block_size: s.meta.block_size, cluster_size: s.meta.cluster_size,
      max_growable_size: s.base.sizeBytes,
    }));
  }

  /** bdev_lvol_create_lvstore: returns the new lvstore's UUID. */
  async create(baseName: string, name: string, clusterSize = DEFAULT_CLUSTER_SIZE, clearMethod: 'unmap' | 'write_zeroes' | 'none' = 'unmap'): Promise<string> {
    if (name.length < 1 || name.length > 63 || name.includes('/')) throw new InvalidBdevError(`lvstore name "${name}" must be 1..63 characters without "/"`);
    checkName(name, 'lvstore name');
    if (this.#stores.some((s) => s.name === name)) throw new LvstoreExistsError(name);
    const base = this.registry.get(baseName);
    const bs = base.blockSize;
    if (!Number.isInteger(clusterSize) || clusterSize < 4096 || clusterSize % 4096 !== 0 || clusterSize % bs !== 0) {
      throw new InvalidBdevError(`cluster size ${clusterSize} must be a multiple of 4096 and of the ${bs}-byte block size`);
    }
    const slot = slotSizeFor(Math.floor(base.sizeBytes / clusterSize), bs);
    const dataOffset = Math.ceil((2 * slot) / clusterSize) * clusterSize;
    const total = Math.floor((base.sizeBytes - dataOffset) / clusterSize);
    if (total < 1) throw new InvalidBdevError(`bdev "${baseName}" is too small for an lvstore with ${clusterSize}-byte clusters`);
    const meta: LvstoreMeta = { uuid: randomUUID(), name, block_size: bs, cluster_size: clusterSize, slot_size: slot, data_offset: dataOffset, total_clusters: total, lvols: [] };
    this.registry.claimFor(base, 'lvol', name);
    const store = new Lvstore(base, meta, 0);
    try {
      // A stale slot B from an older store must not win over the new slot A.
      const zero = bufferPool().get(slot);
      zero.fill(0, 0, slot);
      const r = await ioOnce(base, IoType.Write, slot, slot, zero);
      bufferPool().put(zero);
      if (r < 0) throw new SystemError(`clearing the metadata of lvstore "${name}" failed`, -r);
      await store.persist(); // generation 1 goes to slot A
      const clear = clearMethod === 'unmap' ? IoType.Unmap : clearMethod === 'write_zeroes' ? IoType.WriteZeroes : null;
      if (clear !== null && base.supports(clear)) await ioOnce(base, clear, dataOffset, total * clusterSize);
    } catch (err) {
      this.registry.releaseFor(base, name);
      throw err;
    }
    this.#stores.push(store);
    return meta.uuid;
  }

  /** Looks for an lvstore on a newly registered bdev and brings it and its lvols back. */
  async examine(base: Bdev): Promise<boolean> {
    if (base.module === 'lvol' || base.module === 'malloc' || base.sizeBytes < 2 * 4096) return false;
    const found = await this.#readMeta(base);
    if (found === null) return false;
    const { meta, generation } = found;
    if (meta.block_size !== base.blockSize || this.#stores.some((s) => s.uuid === meta.uuid || s.name === meta.name)) {
      this.log.warn({ bdev: base.name, lvstore: meta.name }, 'lvstore found but not loaded: block size differs or the name is taken');
      return false;
    }
    this.registry.claimFor(base, 'lvol', meta.name);
    const store = new Lvstore(base, meta, generation);
    this.#stores.push(store);
    for (const l of meta.lvols) this.registry.add(lvolBdev(store, l));
    this.log.info({ bdev: base.name, lvstore: meta.name, lvols: meta.lvols.length }, 'lvstore loaded');
    return true;
  }

  async #readMeta(base: Bdev): Promise<{ meta: LvstoreMeta; generation: number } | null> {
    const bs = Math.max(base.blockSize, 4096);
    const readAt = async (off: number, len: number): Promise<Buffer | null> => {
      const n = Math.ceil(len / base.blockSize) * base.blockSize;
      if (off + n > base.sizeBytes) return null;
      const buf = bufferPool().get(n);
      const r = await ioOnce(base, IoType.Read, off, n, buf);
      const out = r < 0 ? null : Buffer.from(buf.subarray(0, len));
      bufferPool().put(buf);
      return out;
    };
    const slotAt = async (off: number): Promise<{ meta: LvstoreMeta | null; generation: number; slotSize: number } | null> => {
      const head = await readAt(off, bs);
      const h = head === null ? null : decodeHeader(head);
      if (h === null) return null;
      const all = await readAt(off, HEADER_LEN + h.jsonLength);
      return { meta: all === null ? null : decodeMeta(h, all), generation: h.generation, slotSize: h.slotSize };
    };
    // Slot A's header says where slot B is, even when A's metadata itself is torn.
    const a = await slotAt(0);
    if (a === null) return null;
    const b = await slotAt(a.slotSize);
    const valid = [a, b].filter((x): x is { meta: LvstoreMeta; generation: number; slotSize: number } => x !== null && x.meta !== null);
    const best = valid.sort((x, y) => y.generation - x.generation)[0];
    return best === undefined ? null : { meta: best.meta, generation: best.generation };
  }

  /** bdev_lvol_create: returns the lvol's UUID (its bdev name). */
  async createLvol(storeName: string, name: string, sizeMib: number, thin: boolean, uuid?: string): Promise<string> {
    const store = this.find(storeName);
    checkName(name, 'lvol name');
    if (store.meta.lvols.some((l) => l.name === name)) throw new BdevExistsError(`${store.name}/${name}`);
    if (!Number.isSafeInteger(sizeMib) || sizeMib <= 0) throw new InvalidBdevError(`size_in_mib ${sizeMib} must be a positive whole number`);
    const n = Math.ceil((sizeMib * MiB) / store.meta.cluster_size);
    const id = uuid ?? randomUUID();
    if (this.registry.has(id)) throw new BdevExistsError(id);
    const clusters = thin ? new Array<number>(n).fill(-1) : store.take(n);
    try {
      if (!thin) await store.zero(clusters);
      const meta: LvolMeta = { uuid: id, name, thin, clusters };
      store.meta.lvols.push(meta);
      try {
        await store.persist();
      } catch (err) {
        store.meta.lvols.splice(store.meta.lvols.indexOf(meta), 1);
        throw err;
      }
      this.registry.add(lvolBdev(store, meta));
    } catch (err) {
      store.give(clusters);
      throw err;
    }
    return id;
  }

  #lvol(name: string): { bdev: Bdev; driver: LvolDriver } {
    const bdev = this.registry.get(name);
    if (!(bdev.driver instanceof LvolDriver)) throw new BdevWrongModuleError(name, bdev.module, 'lvol');
    return { bdev, driver: bdev.driver };
  }

  /** bdev_lvol_delete: hot-removes the bdev, then frees its clusters. */
  async deleteLvol(name: string): Promise<void> {
    const { bdev, driver } = this.#lvol(name);
    await this.registry.delete(bdev.name, 'lvol');
    const store = driver.store;
    store.meta.lvols.splice(store.meta.lvols.indexOf(driver.meta), 1);
    store.give(driver.meta.clusters);
    await store.persist();
  }

  /** bdev_lvol_resize: grows (thick: allocating) or shrinks (freeing the tail clusters). */
  async resizeLvol(name: string, sizeMib: number): Promise<void> {
    const { bdev, driver } = this.#lvol(name);
    const store = driver.store, meta = driver.meta;
    if (!Number.isSafeInteger(sizeMib) || sizeMib <= 0) throw new InvalidBdevError(`size_in_mib ${sizeMib} must be a positive whole number`);
    const n = Math.ceil((sizeMib * MiB) / store.meta.cluster_size);
    const old = meta.clusters.length;
    if (n > old) {
      const added = meta.thin ? new Array<number>(n - old).fill(-1) : store.take(n - old);
      if (!meta.thin) await store.zero(added);
      meta.clusters.push(...added);
    } else if (n < old) {
      if (bdev.outstanding > 0) throw new BdevInUseError(bdev.name, 'I/O in flight; shrink when idle');
      store.give(meta.clusters.splice(n));
    }
    await store.persist();
    bdev.resize((n * store.meta.cluster_size) / store.meta.block_size);
  }

  /** bdev_lvol_delete_lvstore: only an empty one; releases its base. */
  async deleteStore(nameOrUuid: string): Promise<void> {
    const store = this.find(nameOrUuid);
    if (store.meta.lvols.length > 0) throw new BdevInUseError(store.base.name, `lvstore "${store.name}" still has ${store.meta.lvols.length} lvol(s)`);
    // Forget it on disk too, so that examine does not bring it back.
    const slot = store.meta.slot_size;
    const zero = bufferPool().get(slot);
    zero.fill(0, 0, slot);
    await ioOnce(store.base, IoType.Write, 0, slot, zero);
    await ioOnce(store.base, IoType.Write, slot, slot, zero);
    bufferPool().put(zero);
    this.#stores.splice(this.#stores.indexOf(store), 1);
    this.registry.releaseFor(store.base, store.name);
  }

  /** The server is closing: lvol bdevs are closed by the registry; forget the stores. */
  clear(): void { this.#stores.length = 0; }
}

