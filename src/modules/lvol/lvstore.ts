// One lvstore in memory: its metadata (equal to what is on disk after each persist), the
// cluster allocator, the snapshot chains (a clone reads what it has not written from its
// parent, and so on down), copy-on-write allocation, and the writes of its metadata slots
// (format: lvol_format.ts, docs/lvol-format.md).
import type { Bdev } from '../../bdev/bdev.js';
import { bufferPool, IO_CHUNK } from '../../bdev/buffers.js';
import { ioOnce } from '../../bdev/io_once.js';
import { encodeSlot, VERSION, type LvolMeta, type LvstoreMeta } from './lvol_format.js';
import { IoType } from '../../bdev/types.js';
import { NoSpaceError, SystemError } from '../../errors.js';

export class Lvstore {
  readonly #used: Uint8Array;
  readonly #byUuid = new Map<string, LvolMeta>();
  #generation: number;
  /**
   * Found in an older format: the first update writes both slots, so that code reading only
   * that format finds no slot at all rather than the older one, now stale.
   */
  #upgrade: boolean;
  #persisting: Promise<void> = Promise.resolve();
  #ops: Promise<unknown> = Promise.resolve();
  /** Allocations in progress, per lvol uuid and cluster index: writers of that cluster wait. */
  readonly #allocating = new Map<string, Promise<number>>();

  /** @param version the format it was found in (new stores: the current one) */
  constructor(
    readonly base: Bdev,
    readonly meta: LvstoreMeta,
    generation: number,
    version = VERSION,
  ) {
    this.#generation = generation;
    this.#upgrade = version !== VERSION;
    this.#used = new Uint8Array(meta.total_clusters);
    for (const l of meta.lvols) {
      this.#byUuid.set(l.uuid, l);
      for (const c of l.clusters) if (c >= 0) this.#used[c] = 1;
    }
  }

  get name(): string {
    return this.meta.name;
  }
  get uuid(): string {
    return this.meta.uuid;
  }
  get freeClusters(): number {
    let n = 0;
    for (const u of this.#used) n += 1 - u;
    return n;
  }

  /** Runs management operations (create, snapshot, resize, delete...) one at a time. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#ops.then(fn, fn);
    this.#ops = p.catch(() => undefined);
    return p;
  }

  lvol(uuid: string): LvolMeta | undefined {
    return this.#byUuid.get(uuid);
  }
  /** The lvols whose parent is `l`. */
  clonesOf(l: LvolMeta): LvolMeta[] {
    return this.meta.lvols.filter((x) => x.parent === l.uuid);
  }

  /** Adds an lvol's metadata (not yet persisted). */
  add(l: LvolMeta): void {
    this.meta.lvols.push(l);
    this.#byUuid.set(l.uuid, l);
  }

  /** Removes an lvol's metadata (not yet persisted); its clusters stay taken (give() them). */
  detach(l: LvolMeta): void {
    const i = this.meta.lvols.indexOf(l);
    if (i >= 0) this.meta.lvols.splice(i, 1);
    this.#byUuid.delete(l.uuid);
  }

  /** The data cluster that holds lvol cluster k, looking down the snapshot chain; -1: none (zeroes). */
  clusterOf(l: LvolMeta, k: number): number {
    for (let m: LvolMeta | undefined = l; m !== undefined; ) {
      const c = m.clusters[k] ?? -1;
      if (c >= 0) return c;
      if (m.parent === null || k >= m.parent_clusters) return -1;
      m = this.#byUuid.get(m.parent);
    }
    return -1;
  }

  /** Which layer holds lvol cluster k: 1 the lvol itself, 2 its parent, ...; 0 none. */
  depthOf(l: LvolMeta, k: number): number {
    let d = 1;
    for (let m: LvolMeta | undefined = l; m !== undefined; d++) {
      if ((m.clusters[k] ?? -1) >= 0) return d;
      if (m.parent === null || k >= m.parent_clusters) return 0;
      m = this.#byUuid.get(m.parent);
    }
    return 0;
  }

  /** Takes `n` free clusters (lowest first); throws NoSpaceError when there are fewer. */
  take(n: number): number[] {
    const out: number[] = [];
    for (let c = 0; c < this.#used.length && out.length < n; c++) if (this.#used[c] === 0) out.push(c);
    if (out.length < n) throw new NoSpaceError(`lvstore "${this.name}" has ${out.length} free clusters, ${n} needed`);
    for (const c of out) this.#used[c] = 1;
    return out;
  }

  give(clusters: number[]): void {
    for (const c of clusters) if (c >= 0) this.#used[c] = 0;
  }

  offsetOf(cluster: number): number {
    return this.meta.data_offset + cluster * this.meta.cluster_size;
  }

  /**
   * Gives each lvol cluster in `ks` a data cluster of its own: the data it reads now (its
   * parent's, or zeroes) is copied or zeroed first, then the map records them, in one metadata
   * write. Callers asking for a cluster already on its way share that allocation. Resolves with
   * the data clusters, in the order of `ks`.
   */
  allocate(l: LvolMeta, ks: readonly number[]): Promise<number[]> {
    const fresh: number[] = [];
    const keyOf = (k: number): string => `${l.uuid}:${k}`;
    const waits = ks.map((k) => {
      const own = l.clusters[k] ?? -1;
      const pending = this.#allocating.get(keyOf(k));
      if (pending !== undefined) return pending;
      if (own >= 0) return Promise.resolve(own);
      fresh.push(k);
      return null;
    });
    if (fresh.length > 0) {
      // Started in a later microtask, once every key below is registered.
      const batch = Promise.resolve()
        .then(() => this.#allocateNow(l, fresh))
        .finally(() => {
          for (const k of fresh) this.#allocating.delete(keyOf(k));
        });
      fresh.forEach((k, i) => {
        this.#allocating.set(
          keyOf(k),
          batch.then((cs) => cs[i] as number),
        );
      });
    }
    return Promise.all(waits.map((w, i) => w ?? (this.#allocating.get(keyOf(ks[i] as number)) as Promise<number>)));
  }

  async #allocateNow(l: LvolMeta, ks: number[]): Promise<number[]> {
    const cs = this.take(ks.length);
    try {
      const zero: number[] = [];
      for (const [i, k] of ks.entries()) {
        const src = this.clusterOf(l, k);
        if (src >= 0) await this.#copy(src, cs[i] as number);
        else zero.push(cs[i] as number);
      }
      await this.zero(zero);
      ks.forEach((k, i) => {
        l.clusters[k] = cs[i] as number;
      });
      await this.persist();
      return cs;
    } catch (err) {
      ks.forEach((k, i) => {
        if (l.clusters[k] === cs[i]) l.clusters[k] = -1;
      });
      this.give(cs);
      throw err;
    }
  }

  /** Copies one data cluster to another, in pieces of at most IO_CHUNK. */
  async #copy(from: number, to: number): Promise<void> {
    const cs = this.meta.cluster_size;
    const n = Math.min(cs, IO_CHUNK);
    const buf = bufferPool().get(n);
    try {
      for (let at = 0; at < cs; at += n) {
        let r = await ioOnce(this.base, IoType.Read, this.offsetOf(from) + at, n, buf);
        if (r === 0) r = await ioOnce(this.base, IoType.Write, this.offsetOf(to) + at, n, buf);
        if (r < 0) throw new SystemError(`copying a cluster of lvstore "${this.name}" failed`, -r);
      }
    } finally {
      bufferPool().put(buf);
    }
  }

  /** Zeroes data clusters on the base (a cluster is zeroed when it is allocated). */
  async zero(clusters: number[]): Promise<void> {
    const cs = this.meta.cluster_size;
    for (const c of clusters) {
      let r: number;
      if (this.base.supports(IoType.WriteZeroes)) {
        r = await ioOnce(this.base, IoType.WriteZeroes, this.offsetOf(c), cs);
      } else {
        const buf = bufferPool().get(cs);
        buf.fill(0, 0, cs);
        r = await ioOnce(this.base, IoType.Write, this.offsetOf(c), cs, buf);
        bufferPool().put(buf);
      }
      if (r < 0) throw new SystemError(`zeroing a cluster of lvstore "${this.name}" failed`, -r);
    }
  }

  /** Writes the metadata into the other slot with the next generation, then flushes. Serialized. */
  persist(): Promise<void> {
    const run = async (): Promise<void> => {
      const slot = this.meta.slot_size;
      const buf = bufferPool().get(slot);
      try {
        for (let again = true; again; ) {
          const gen = this.#generation + 1;
          encodeSlot(this.meta, gen, buf);
          // Generation 1 in slot A, 2 in B, 3 in A...
          const r = await ioOnce(this.base, IoType.Write, ((gen - 1) % 2) * slot, slot, buf);
          if (r < 0) throw new SystemError(`writing the metadata of lvstore "${this.name}" failed`, -r);
          if (this.base.supports(IoType.Flush)) {
            const f = await ioOnce(this.base, IoType.Flush, 0, 0);
            if (f < 0) throw new SystemError(`flushing the metadata of lvstore "${this.name}" failed`, -f);
          }
          this.#generation = gen;
          again = this.#upgrade;
          this.#upgrade = false;
        }
      } finally {
        bufferPool().put(buf);
      }
    };
    const p = this.#persisting.then(run, run);
    this.#persisting = p.catch(() => undefined);
    return p;
  }
}
