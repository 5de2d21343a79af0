// The lvstores of one registry and what SPDK's lvol RPCs do with them: create, examine (find an
// lvstore on a new bdev and bring its lvols back), lvols thick and thin, snapshots and clones,
// inflate, decouple, read-only, resize, delete. Each store runs these one at a time; what
// changes a cluster map under I/O (snapshot, shrink, a new parent) runs with the lvol quiesced.
// Metadata is written on every change, so everything comes back when the base bdev does.
import { randomUUID } from 'node:crypto';
import {
  BdevExistsError,
  BdevInUseError,
  InvalidBdevError,
  LvolReadOnlyError,
  LvstoreExistsError,
  LvstoreNotFoundError,
  NoSpaceError,
  SystemError,
} from '../../errors.js';
import type { Logger } from '../../log.js';
import { driverOf, type Bdev } from '../../bdev/bdev.js';
import { bufferPool } from '../../bdev/buffers.js';
import { ioOnce } from '../../bdev/io_once.js';
import { lvolBdev, LvolDriver } from './lvol.js';
import {
  decodeHeader,
  decodeMeta,
  HEADER_LEN,
  MAX_LVOL_CLUSTERS,
  READABLE_VERSIONS,
  slotSizeFor,
  VERSION,
  type LvolMeta,
  type LvstoreMeta,
} from './lvol_format.js';
import { Lvstore } from './lvstore.js';
import { checkName } from '../../bdev/names.js';
import type { BdevRegistry } from '../../bdev/registry.js';
import { IoType } from '../../bdev/types.js';

const MiB = 2 ** 20;
export const DEFAULT_CLUSTER_SIZE = 4 * MiB;
/** Clusters allocated per metadata write by inflate and decouple. */
const COPY_BATCH = 32;

export interface LvstoreInfo {
  uuid: string;
  name: string;
  base_bdev: string;
  total_data_clusters: number;
  free_clusters: number;
  block_size: number;
  cluster_size: number;
  max_growable_size: number;
}

export interface StoreFilter {
  uuid?: string | undefined;
  lvsName?: string | undefined;
}

/** How errors name an lvol: its alias "lvs/name". */
const label = (b: Bdev): string => b.aliases[0] ?? b.name;

type Found = { meta: LvstoreMeta; generation: number; version: number } | { unreadable: number } | null;

export class Lvstores {
  readonly #stores: Lvstore[] = [];

  constructor(
    private readonly registry: BdevRegistry,
    private readonly log: Logger,
  ) {}

  find(nameOrUuid: string): Lvstore {
    const s = this.#stores.find((x) => x.name === nameOrUuid || x.uuid === nameOrUuid);
    if (s === undefined) throw new LvstoreNotFoundError(nameOrUuid);
    return s;
  }

  /** Every lvstore, or the one a filter names. */
  #pick(filter: StoreFilter): Lvstore[] {
    const pick = filter.uuid ?? filter.lvsName;
    return pick === undefined ? this.#stores : [this.find(pick)];
  }

  list(filter: StoreFilter = {}): LvstoreInfo[] {
    return this.#pick(filter).map((s) => ({
      uuid: s.uuid,
      name: s.name,
      base_bdev: s.base.name,
      total_data_clusters: s.meta.total_clusters,
      free_clusters: s.freeClusters,
      block_size: s.meta.block_size,
      cluster_size: s.meta.cluster_size,
      max_growable_size: s.base.sizeBytes,
    }));
  }

  /** bdev_lvol_get_lvols: SPDK's shape, every lvol of every (or one) lvstore. */
  lvols(filter: StoreFilter = {}): Record<string, unknown>[] {
    return this.#pick(filter).flatMap((s) =>
      s.meta.lvols.map((l) => ({
        alias: `${s.name}/${l.name}`,
        uuid: l.uuid,
        name: l.name,
        is_thin_provisioned: l.thin,
        is_snapshot: l.snapshot || s.clonesOf(l).length > 0,
        is_clone: l.parent !== null,
        is_esnap_clone: false,
        is_degraded: false,
        num_allocated_clusters: l.clusters.filter((c) => c >= 0).length,
        lvs: { name: s.name, uuid: s.uuid },
      })),
    );
  }

  /** bdev_lvol_create_lvstore: returns the new lvstore's UUID. */
  async create(
    baseName: string,
    name: string,
    clusterSize = DEFAULT_CLUSTER_SIZE,
    clearMethod: 'unmap' | 'write_zeroes' | 'none' = 'unmap',
  ): Promise<string> {
    if (name.length < 1 || name.length > 63 || name.includes('/'))
      throw new InvalidBdevError(`lvstore name "${name}" must be 1..63 characters without "/"`);
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
    const meta: LvstoreMeta = {
      uuid: randomUUID(),
      name,
      block_size: bs,
      cluster_size: clusterSize,
      slot_size: slot,
      data_offset: dataOffset,
      total_clusters: total,
      lvols: [],
    };
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

  /**
   * Looks for an lvstore on a newly registered bdev and brings it and its lvols back. Which
   * bdevs are worth reading is the caller's choice (the lvol module's examine hook).
   */
  async examine(base: Bdev): Promise<boolean> {
    if (base.sizeBytes < 2 * 4096) return false;
    const found = await this.#readMeta(base);
    if (found === null) return false;
    if ('unreadable' in found) {
      this.log.warn(
        { bdev: base.name, format: found.unreadable, readable: READABLE_VERSIONS },
        `bdev "${base.name}" holds an lvstore in on-disk format ${found.unreadable}, which this aionbd cannot read: it is left alone (use the aionbd that made it, or a newer one)`,
      );
      return false;
    }
    const { meta, generation, version } = found;
    if (meta.block_size !== base.blockSize || this.#stores.some((s) => s.uuid === meta.uuid || s.name === meta.name)) {
      this.log.warn({ bdev: base.name, lvstore: meta.name }, 'lvstore found but not loaded: block size differs or the name is taken');
      return false;
    }
    this.registry.claimFor(base, 'lvol', meta.name);
    const store = new Lvstore(base, meta, generation, version);
    this.#stores.push(store);
    for (const l of meta.lvols) this.registry.add(lvolBdev(store, l));
    if (version !== VERSION) {
      this.log.info(
        { bdev: base.name, lvstore: meta.name, format: version },
        `lvstore "${meta.name}" is in on-disk format ${version}; it is rewritten in format ${VERSION} at its next metadata change (see docs/lvol-format.md)`,
      );
    }
    this.log.info({ bdev: base.name, lvstore: meta.name, lvols: meta.lvols.length }, 'lvstore loaded');
    return true;
  }

  async #readMeta(base: Bdev): Promise<Found> {
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
    interface Slot {
      meta: LvstoreMeta | null;
      generation: number;
      version: number;
      slotSize: number;
    }
    const slotAt = async (off: number): Promise<Slot | null> => {
      const head = await readAt(off, bs);
      const h = head === null ? null : decodeHeader(head);
      if (h === null) return null;
      if (!READABLE_VERSIONS.includes(h.version)) return { meta: null, generation: h.generation, version: h.version, slotSize: h.slotSize };
      const all = await readAt(off, HEADER_LEN + h.jsonLength);
      return { meta: all === null ? null : decodeMeta(h, all), generation: h.generation, version: h.version, slotSize: h.slotSize };
    };
    // Slot A's header says where slot B is, even when A's metadata itself is torn.
    const a = await slotAt(0);
    if (a === null) return null;
    const b = await slotAt(a.slotSize);
    const slots = [a, b].filter((x): x is Slot => x !== null).sort((x, y) => y.generation - x.generation);
    // The newest slot decides: a store newer code has written is not read by older code.
    const newest = slots[0] as Slot;
    if (!READABLE_VERSIONS.includes(newest.version)) return { unreadable: newest.version };
    const best = slots.find((x) => x.meta !== null);
    return best === undefined ? null : { meta: best.meta as LvstoreMeta, generation: best.generation, version: best.version };
  }

  #lvol(name: string): { bdev: Bdev; driver: LvolDriver } {
    const bdev = this.registry.get(name);
    return { bdev, driver: driverOf(bdev, LvolDriver, 'lvol') };
  }

  /** Clusters for `sizeMib` MiB in `store`, refused when not a positive whole number. */
  #clustersFor(store: Lvstore, sizeMib: number): number {
    if (!Number.isSafeInteger(sizeMib) || sizeMib <= 0)
      throw new InvalidBdevError(`size_in_mib ${sizeMib} must be a positive whole number`);
    const n = Math.ceil((sizeMib * MiB) / store.meta.cluster_size);
    if (n > MAX_LVOL_CLUSTERS) throw new InvalidBdevError(`size_in_mib ${sizeMib} is more than ${MAX_LVOL_CLUSTERS} clusters`);
    return n;
  }

  /** Adds a new lvol: its metadata on disk first, then its bdev. */
  async #addLvol(store: Lvstore, meta: LvolMeta): Promise<string> {
    checkName(meta.name, 'lvol name');
    const alias = `${store.name}/${meta.name}`;
    if (store.meta.lvols.some((l) => l.name === meta.name) || this.registry.has(alias)) throw new BdevExistsError(alias);
    if (this.registry.has(meta.uuid)) throw new BdevExistsError(meta.uuid);
    store.add(meta);
    try {
      await store.persist();
    } catch (err) {
      store.detach(meta);
      throw err;
    }
    this.registry.add(lvolBdev(store, meta));
    return meta.uuid;
  }

  /** bdev_lvol_create: returns the lvol's UUID (its bdev name). */
  createLvol(storeName: string, name: string, sizeMib: number, thin: boolean, uuid?: string): Promise<string> {
    const store = this.find(storeName);
    return store.exclusive(async () => {
      const n = this.#clustersFor(store, sizeMib);
      const clusters = thin ? new Array<number>(n).fill(-1) : store.take(n);
      try {
        if (!thin) await store.zero(clusters);
        return await this.#addLvol(store, {
          uuid: uuid ?? randomUUID(),
          name,
          thin,
          clusters,
          parent: null,
          parent_clusters: 0,
          read_only: false,
          snapshot: false,
        });
      } catch (err) {
        store.give(clusters);
        throw err;
      }
    });
  }

  /**
   * bdev_lvol_snapshot: the lvol's clusters become a read-only snapshot, and the lvol a thin
   * clone of it that starts empty (SPDK's semantics). Returns the snapshot's UUID.
   */
  snapshot(lvolName: string, snapshotName: string): Promise<string> {
    const { bdev, driver } = this.#lvol(lvolName);
    const store = driver.store,
      m = driver.meta;
    return store.exclusive(async () => {
      if (m.read_only) throw new LvolReadOnlyError(label(bdev), 'clone it (bdev_lvol_clone) instead of taking a snapshot of it');
      const snap: LvolMeta = {
        uuid: randomUUID(),
        name: snapshotName,
        thin: m.thin,
        clusters: m.clusters,
        parent: m.parent,
        parent_clusters: m.parent_clusters,
        read_only: true,
        snapshot: true,
      };
      await driver.quiesce(async () => {
        const was = { clusters: m.clusters, parent: m.parent, parent_clusters: m.parent_clusters, thin: m.thin };
        m.clusters = new Array<number>(was.clusters.length).fill(-1);
        m.parent = snap.uuid;
        m.parent_clusters = was.clusters.length;
        m.thin = true;
        try {
          await this.#addLvol(store, snap);
        } catch (err) {
          Object.assign(m, was);
          throw err;
        }
      });
      return snap.uuid;
    });
  }

  /** bdev_lvol_clone: a thin lvol reading through to a snapshot (or read-only lvol). Returns its UUID. */
  clone(snapshotName: string, cloneName: string): Promise<string> {
    const { bdev, driver } = this.#lvol(snapshotName);
    const store = driver.store,
      src = driver.meta;
    return store.exclusive(() => {
      if (!src.read_only) {
        throw new InvalidBdevError(
          `lvol "${label(bdev)}" is not read-only: clone a snapshot of it (bdev_lvol_snapshot), or make it read-only first (bdev_lvol_set_read_only)`,
        );
      }
      const n = src.clusters.length;
      return this.#addLvol(store, {
        uuid: randomUUID(),
        name: cloneName,
        thin: true,
        clusters: new Array<number>(n).fill(-1),
        parent: src.uuid,
        parent_clusters: n,
        read_only: false,
        snapshot: false,
      });
    });
  }

  /** bdev_lvol_inflate: every cluster its own (copied from the chain, or zeroed); no parent left; thick. */
  inflate(name: string): Promise<void> {
    const { driver } = this.#lvol(name);
    const store = driver.store,
      m = driver.meta;
    return store.exclusive(async () => {
      await this.#own(
        store,
        m,
        m.clusters.flatMap((c, k) => (c < 0 ? [k] : [])),
      );
      await driver.quiesce(async () => {
        m.parent = null;
        m.parent_clusters = 0;
        m.thin = false;
        await store.persist();
      });
    });
  }

  /** bdev_lvol_decouple_parent: the clusters its parent holds are copied in; the parent's parent becomes its own. */
  decoupleParent(name: string): Promise<void> {
    const { bdev, driver } = this.#lvol(name);
    const store = driver.store,
      m = driver.meta;
    return store.exclusive(async () => {
      const p = m.parent === null ? undefined : store.lvol(m.parent);
      if (p === undefined) throw new InvalidBdevError(`lvol "${label(bdev)}" has no parent to decouple from`);
      const limit = Math.min(m.parent_clusters, m.clusters.length);
      const ks: number[] = [];
      for (let k = 0; k < limit; k++) if ((m.clusters[k] as number) < 0 && (p.clusters[k] ?? -1) >= 0) ks.push(k);
      await this.#own(store, m, ks);
      await driver.quiesce(async () => {
        m.parent = p.parent;
        m.parent_clusters = p.parent === null ? 0 : Math.min(m.parent_clusters, p.parent_clusters);
        await store.persist();
      });
    });
  }

  /** Gives lvol clusters `ks` their own data clusters, a batch per metadata write. */
  async #own(store: Lvstore, m: LvolMeta, ks: number[]): Promise<void> {
    if (ks.length > store.freeClusters)
      throw new NoSpaceError(`lvstore "${store.name}" has ${store.freeClusters} free clusters, ${ks.length} needed`);
    for (let i = 0; i < ks.length; i += COPY_BATCH) await store.allocate(m, ks.slice(i, i + COPY_BATCH));
  }

  /** bdev_lvol_set_read_only: writes fail from now on, and it can be cloned. */
  setReadOnly(name: string): Promise<void> {
    const { bdev, driver } = this.#lvol(name);
    const store = driver.store,
      m = driver.meta;
    return store.exclusive(async () => {
      if (m.read_only) return;
      // Writes in flight finish first: none lands after the answer.
      await driver.quiesce(async () => {
        m.read_only = true;
        try {
          await store.persist();
        } catch (err) {
          m.read_only = false;
          throw err;
        }
      });
      bdev.setReadOnly();
    });
  }

  /** bdev_lvol_delete: hot-removes the bdev, then frees its clusters. Refused for a snapshot with clones. */
  deleteLvol(name: string): Promise<void> {
    const { bdev, driver } = this.#lvol(name);
    const store = driver.store,
      m = driver.meta;
    return store.exclusive(async () => {
      const clones = store.clonesOf(m).map((c) => `${store.name}/${c.name}`);
      if (clones.length > 0) {
        throw new BdevInUseError(
          label(bdev),
          `it has clones (${clones.join(', ')}): delete them, or make each ` +
            'independent of it with bdev_lvol_inflate or bdev_lvol_decouple_parent, first',
        );
      }
      await this.registry.delete(bdev.name, 'lvol');
      store.detach(m);
      store.give(m.clusters);
      await store.persist();
    });
  }

  /**
   * bdev_lvol_resize: grows (thick: allocating) or shrinks (freeing the tail clusters). Before
   * shrinking, `beforeShrink` may refuse (clients were told more). Resolves once the bdev has
   * its new size; its resize listeners have then run.
   */
  resizeLvol(name: string, sizeMib: number, beforeShrink?: (b: Bdev, bytes: number) => void): Promise<void> {
    const { bdev, driver } = this.#lvol(name);
    const store = driver.store,
      m = driver.meta;
    return store.exclusive(async () => {
      if (m.read_only) throw new LvolReadOnlyError(label(bdev), 'it cannot be resized');
      const n = this.#clustersFor(store, sizeMib);
      const old = m.clusters.length,
        cs = store.meta.cluster_size,
        blocks = (n * cs) / store.meta.block_size;
      if (n > old) {
        const added = m.thin ? new Array<number>(n - old).fill(-1) : store.take(n - old);
        try {
          if (!m.thin) await store.zero(added);
          m.clusters.push(...added);
          await store.persist();
        } catch (err) {
          m.clusters.length = old;
          store.give(added);
          throw err;
        }
        bdev.resize(blocks);
      } else if (n < old) {
        beforeShrink?.(bdev, n * cs);
        // No I/O may reach the tail between the cut and the new size.
        await driver.quiesce(async () => {
          const cut = m.clusters.splice(n),
            pc = m.parent_clusters;
          m.parent_clusters = Math.min(pc, n);
          try {
            await store.persist();
          } catch (err) {
            m.clusters.push(...cut);
            m.parent_clusters = pc;
            throw err;
          }
          store.give(cut);
          bdev.resize(blocks);
        });
      }
    });
  }

  /** bdev_lvol_delete_lvstore: only an empty one; releases its base. */
  async deleteStore(nameOrUuid: string): Promise<void> {
    const store = this.find(nameOrUuid);
    if (store.meta.lvols.length > 0)
      throw new BdevInUseError(store.base.name, `lvstore "${store.name}" still has ${store.meta.lvols.length} lvol(s)`);
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
  clear(): void {
    this.#stores.length = 0;
  }
}
