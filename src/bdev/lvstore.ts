// One lvstore in memory: its metadata (equal to what is on disk after each persist), the
// cluster allocator, and the writes of its metadata slots (format: lvol_format.ts).
import type { Bdev } from './bdev.js';
import { bufferPool } from './buffers.js';
import { ioOnce } from './io_once.js';
import { encodeSlot, type LvstoreMeta } from './lvol_format.js';
import { IoType } from './types.js';
import { NoSpaceError, SystemError } from '../errors.js';

/** One lvstore: its metadata (kept equal to what is on disk after each persist) and allocator. */
export class Lvstore {
  readonly #used: Uint8Array;
  #generation: number;
  #persisting: Promise<void> = Promise.resolve();
  /** Allocations in progress, per lvol uuid and cluster index: writers of that cluster wait. */
  readonly allocating = new Map<string, Promise<number>>();

  constructor(readonly base: Bdev, readonly meta: LvstoreMeta, generation: number) {
    this.#generation = generation;
    this.#used = new Uint8Array(meta.total_clusters);
    for (const l of meta.lvols) for (const c of l.clusters) if (c >= 0) this.#used[c] = 1;
  }

  get name(): string { return this.meta.name; }
  get uuid(): string { return this.meta.uuid; }
  get freeClusters(): number { let n = 0; for (const u of this.#used) n += 1 - u; return n; }

  /** Takes `n` free clusters (lowest first); throws NoSpaceError when there are fewer. */
  take(n: number): number[] {
    const out: number[] = [];
    for (let c = 0; c < this.#used.length && out.length < n; c++) if (this.#used[c] === 0) out.push(c);
    if (out.length < n) throw new NoSpaceError(`lvstore "${this.name}" has ${out.length} free clusters, ${n} needed`);
    for (const c of out) this.#used[c] = 1;
    return out;
  }

  give(clusters: number[]): void { for (const c of clusters) if (c >= 0) this.#used[c] = 0; }

  offsetOf(cluster: number): number { return this.meta.data_offset + cluster * this.meta.cluster_size; }

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
      const gen = this.#generation + 1;
      const slot = this.meta.slot_size;
      const buf = bufferPool().get(slot);
      try {
        encodeSlot(this.meta, gen, buf);
        // Generation 1 in slot A, 2 in B, 3 in A...
        const r = await ioOnce(this.base, IoType.Write, ((gen - 1) % 2) * slot, slot, buf);
        if (r < 0) throw new SystemError(`writing the metadata of lvstore "${this.name}" failed`, -r);
        if (this.base.supports(IoType.Flush)) {
          const f = await ioOnce(this.base, IoType.Flush, 0, 0);
          if (f < 0) throw new SystemError(`flushing the metadata of lvstore "${this.name}" failed`, -f);
        }
        this.#generation = gen;
      } finally {
        bufferPool().put(buf);
      }
    };
    const p = this.#persisting.then(run, run);
    this.#persisting = p.catch(() => undefined);
    return p;
  }
}
