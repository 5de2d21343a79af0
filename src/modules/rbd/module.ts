// The RBD module's operations as the server runs them: bdev_rbd_create with a registered
// cluster's connection or one of its own, bdev_rbd_resize.
import { InvalidBdevError, UsageError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Bdev } from '../../bdev/bdev.js';
import { createRbdBdev, rbdDriverOf, type RbdImageRef } from './bdev.js';
import { RbdConnection, rbdNative, type RbdClusters } from './cluster.js';

export interface RbdParams extends RbdImageRef {
  /** Default: Ceph0, Ceph1, ... as SPDK. */
  name?: string | undefined;
  blockSize: number;
  readonly?: boolean | undefined;
  uuid?: string | undefined;
}

export interface RbdContext {
  clusters: RbdClusters;
  /** Whether a bdev name is taken. */
  taken: (name: string) => boolean;
  queueDepth?: number | undefined;
  log: Logger;
  /** How a new block count is applied (the server's resizeBdev). */
  resize?: ((b: Bdev, numBlocks: number) => Promise<void>) | undefined;
}

/** Opens the image as a bdev (not registered): over a registered cluster, or a connection of its own. */
export async function openRbd(p: RbdParams, ctx: RbdContext): Promise<Bdev> {
  rbdNative(); // first: a build without RBD says so, whatever else is wrong with the call
  let name = p.name;
  for (let i = 0; name === undefined; i++) if (!ctx.taken(`Ceph${i}`)) name = `Ceph${i}`;
  const bdev = name;
  if (p.clusterName !== undefined) {
    if (p.userId !== undefined || p.config !== undefined) {
      throw new UsageError("give either cluster_name (a registered cluster) or user_id/config (a connection of the bdev's own), not both");
    }
    const cluster = p.clusterName;
    const conn = ctx.clusters.use(cluster, bdev);
    const release = (): Promise<void> => {
      ctx.clusters.release(cluster, bdev);
      return Promise.resolve();
    };
    return createRbdBdev({ ...p, name: bdev, conn, release, queueDepth: ctx.queueDepth, log: ctx.log, resize: ctx.resize });
  }
  const conn = await RbdConnection.open({ userId: p.userId, config: p.config });
  return createRbdBdev({
    ...p,
    name: bdev,
    conn,
    release: () => conn.close(),
    queueDepth: ctx.queueDepth,
    log: ctx.log,
    resize: ctx.resize,
  });
}

const MiB = 2 ** 20;

/** bdev_rbd_resize: grows the image to newSizeMib MiB (SPDK refuses to shrink, and so do we). */
export async function resizeRbd(b: Bdev, newSizeMib: number): Promise<void> {
  const d = rbdDriverOf(b);
  const bytes = newSizeMib * MiB;
  if (!Number.isSafeInteger(bytes) || bytes < b.sizeBytes) {
    throw new InvalidBdevError(
      `new size ${newSizeMib} MiB is smaller than the bdev's ${Math.ceil(b.sizeBytes / MiB)} MiB: an RBD bdev only grows`,
    );
  }
  if (b.readonly) throw new InvalidBdevError(`bdev "${b.name}" is read-only`);
  await d.queue.resize(bytes);
  await d.sizeChanged(await d.queue.size());
}
