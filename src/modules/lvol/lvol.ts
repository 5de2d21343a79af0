// Logical volumes (SPDK's lvol, in our own on-disk format: see lvol_format.ts): the bdev of one
// lvol. Its I/O is cut at cluster boundaries; a cluster it has goes to the lvstore's base, one it
// has not reads from its parent snapshot (and so on down the chain) or as zeroes, and is
// allocated on its first write: zeroed, or copied from the parent (copy-on-write), recorded,
// then written. Snapshots and read-only lvols refuse writes. Block status comes from the
// cluster maps, with the depth of the layer that holds each cluster.
import { constants } from 'node:os';
import { NoSpaceError } from '../../errors.js';
import { ESHUTDOWN } from '../../util/errno.js';
import { Bdev } from '../../bdev/bdev.js';
import { pushExtent } from '../../bdev/block_status.js';
import { PassThrough } from '../../bdev/child_io.js';
import type { LvolMeta } from './lvol_format.js';
import type { Lvstore } from './lvstore.js';
import { BLOCK_HOLE, BLOCK_ZERO, IoFlag, IoType, type BdevDriver, type BdevIo, type BlockExtent } from '../../bdev/types.js';

const E = constants.errno;
/** Clusters one block status answer walks at most; the client asks again for the rest. */
const STATUS_CLUSTERS = 2 ** 18;

export class LvolDriver implements BdevDriver {
  readonly module = 'lvol';
  /** Its in-flight count is what quiesce() waits on. */
  readonly #children = new PassThrough();
  /** While quiesced, new I/O waits here. */
  #frozen = false;
  readonly #held: BdevIo[] = [];

  /** The base's: every piece goes to it with the lvol I/O's flags. */
  readonly ioFlags: number;

  constructor(
    readonly store: Lvstore,
    readonly meta: LvolMeta,
  ) {
    this.ioFlags = store.base.ioFlags;
  }

  supports(type: IoType): boolean {
    if (type === IoType.Read || type === IoType.Write || type === IoType.Unmap || type === IoType.WriteZeroes) return true;
    return type === IoType.Flush && this.store.base.supports(IoType.Flush);
  }

  submit(io: BdevIo): void {
    if (this.#frozen) {
      this.#held.push(io);
      return;
    }
    if (this.meta.read_only && (io.type === IoType.Write || io.type === IoType.Unmap || io.type === IoType.WriteZeroes)) {
      io.complete(-E.EROFS);
      return;
    }
    if ((io.flags & IoFlag.FastZero) !== 0 && this.#allocates(io)) {
      // Decided before any piece starts, so a refused fast zero changes nothing.
      io.complete(-E.EOPNOTSUPP);
      return;
    }
    if (io.type === IoType.Flush) {
      this.#children.forward(io, this.store.base);
      return;
    }
    const cs = this.store.meta.cluster_size;
    const first = Math.floor(io.offset / cs),
      last = Math.floor((io.offset + io.length - 1) / cs);
    const t = this.#children.fanOut(io, last - first + 1);
    let pos = 0;
    for (let k = first; k <= last; k++) {
      const inCluster = k === first ? io.offset % cs : 0;
      const len = Math.min(cs - inCluster, io.length - pos);
      this.#piece(io, t, k, inCluster, pos, len);
      pos += len;
    }
  }

  #piece(io: BdevIo, t: number, k: number, inCluster: number, pos: number, len: number): void {
    const own = this.meta.clusters[k] ?? -1;
    if (own >= 0) {
      this.#toBase(io, t, own, inCluster, pos, len);
      return;
    }
    switch (io.type) {
      case IoType.Read: {
        const c = this.meta.parent === null ? -1 : this.store.clusterOf(this.meta, k);
        if (c >= 0) {
          this.#toBase(io, t, c, inCluster, pos, len);
          return;
        }
        // A cluster no layer has written reads as zeroes.
        (io.buf as Buffer).fill(0, pos, pos + len);
        this.#children.pieceDone(t, 0);
        return;
      }
      case IoType.Unmap:
        // A hint: a cluster of our own is not there to give back, and the parent's is not ours.
        this.#children.pieceDone(t, 0);
        return;
      case IoType.WriteZeroes:
        // Already zeroes unless a parent holds data there (then it needs a cluster of its own),
        // or NO_HOLE asks for the range to be allocated.
        if (!this.#zeroAllocates(io, k)) {
          this.#children.pieceDone(t, 0);
          return;
        }
        break;
      default:
        break;
    }
    this.store.allocate(this.meta, [k]).then(
      ([c]) => this.#toBase(io, t, c as number, inCluster, pos, len),
      (err: unknown) => {
        this.#children.pieceDone(t, err instanceof NoSpaceError ? -E.ENOSPC : -E.EIO);
      },
    );
  }

  /** A WRITE_ZEROES piece on cluster k needs a cluster allocated (zeroed, or copied from a parent). */
  #zeroAllocates(io: BdevIo, k: number): boolean {
    if ((this.meta.clusters[k] ?? -1) >= 0) return false;
    return (io.flags & IoFlag.NoHole) !== 0 || this.store.clusterOf(this.meta, k) >= 0;
  }

  // Allocating is a metadata write at least, and a cluster copy from a parent at worst: never fast.
  #allocates(io: BdevIo): boolean {
    const cs = this.store.meta.cluster_size;
    const last = Math.floor((io.offset + io.length - 1) / cs);
    for (let k = Math.floor(io.offset / cs); k <= last; k++) if (this.#zeroAllocates(io, k)) return true;
    return false;
  }

  #toBase(io: BdevIo, t: number, cluster: number, inCluster: number, pos: number, len: number): void {
    const buf = io.buf === null ? null : pos === 0 && len === io.length ? io.buf : io.buf.subarray(pos, pos + len);
    this.#children.piece(t, this.store.base, io.type, this.store.offsetOf(cluster) + inCluster, len, buf);
  }

  /**
   * Runs fn with no I/O in flight: new I/O waits until it is done. For what changes the cluster
   * map under the I/O path (a snapshot takes it, a shrink cuts it, a decouple changes the parent).
   */
  async quiesce<T>(fn: () => Promise<T> | T): Promise<T> {
    this.#frozen = true;
    try {
      await this.#children.idle();
      return await fn();
    } finally {
      this.#frozen = false;
      for (const io of this.#held.splice(0)) this.submit(io);
    }
  }

  // The bdev is closing: I/O held by a quiesce will not run.
  abort(): void {
    for (const io of this.#held.splice(0)) io.complete(-ESHUTDOWN);
  }

  blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    const cs = this.store.meta.cluster_size;
    const end = Math.min(offset + length, (Math.floor(offset / cs) + STATUS_CLUSTERS) * cs);
    const out: BlockExtent[] = [];
    for (let k = Math.floor(offset / cs); k * cs < end; k++) {
      const d = this.store.depthOf(this.meta, k);
      pushExtent(out, Math.min(end, (k + 1) * cs) - Math.max(offset, k * cs), d === 0 ? BLOCK_HOLE | BLOCK_ZERO : 0, d);
    }
    return Promise.resolve(out);
  }

  knowsDepth(): boolean {
    return true;
  }

  info(): Record<string, unknown> {
    const m = this.meta,
      parent = m.parent === null ? undefined : this.store.lvol(m.parent);
    const clones = this.store.clonesOf(m).map((x) => x.name);
    return {
      lvol: {
        lvol_store_uuid: this.store.uuid,
        base_bdev: this.store.base.name,
        thin_provision: m.thin,
        num_allocated_clusters: m.clusters.filter((c) => c >= 0).length,
        snapshot: m.snapshot || clones.length > 0,
        clone: parent !== undefined,
        ...(parent !== undefined ? { base_snapshot: parent.name } : {}),
        ...(clones.length > 0 ? { clones } : {}),
        esnap_clone: false,
        read_only: m.read_only,
      },
    };
  }

  // Nothing in save_config: lvols come back from their base's metadata, as in SPDK.
  config(): null {
    return null;
  }

  destruct(): Promise<void> {
    return Promise.resolve();
  }
}

/** The bdev of one lvol: named by its UUID, alias "<lvstore>/<lvol>". */
export function lvolBdev(store: Lvstore, meta: LvolMeta): Bdev {
  return new Bdev(
    {
      name: meta.uuid,
      aliases: [`${store.name}/${meta.name}`],
      uuid: meta.uuid,
      blockSize: store.meta.block_size,
      numBlocks: (meta.clusters.length * store.meta.cluster_size) / store.meta.block_size,
      readonly: meta.read_only,
      writeCache: store.base.writeCache,
      optimalIoBoundary: store.meta.cluster_size,
    },
    new LvolDriver(store, meta),
  );
}
