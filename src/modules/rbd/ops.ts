// The RBD module's state and operations on a target: its registered clusters, bdev_rbd_create
// and bdev_rbd_resize.
import type { Bdev } from '../../bdev/bdev.js';
import { ModuleState, type ModuleContext } from '../../bdev/module.js';
import { checkName, checkUuid } from '../../bdev/names.js';
import { RbdClusters } from './cluster.js';
import type { ConfigEntry } from '../../bdev/types.js';
import { openRbd, resizeRbd as growRbd, type RbdParams } from './module.js';
import { BdevExistsError } from '../../errors.js';

const clusters = new ModuleState(() => new RbdClusters());

/** The target's registered Ceph clusters (bdev_rbd_register_cluster), each one connection shared by its RBD bdevs. */
export function rbdClustersOf(ctx: ModuleContext): RbdClusters {
  return clusters.of(ctx);
}

/** After every bdev closed: the cluster connections go. */
export async function closeClusters(ctx: ModuleContext): Promise<void> {
  await clusters.peek(ctx)?.closeAll();
}

/** save_config: the clusters, before the RBD bdevs that name them. */
export function clusterEntries(ctx: ModuleContext): ConfigEntry[] {
  return clusters.peek(ctx)?.configEntries() ?? [];
}

/** bdev_rbd_create: opens an RBD image (bounded by the cluster's timeouts) as a bdev. */
export async function createRbd(ctx: ModuleContext, p: RbdParams): Promise<Bdev> {
  if (p.name !== undefined) {
    checkName(p.name);
    if (ctx.bdevs.has(p.name)) throw new BdevExistsError(p.name);
  }
  const b = await openRbd(
    { ...p, uuid: checkUuid(p.uuid) },
    {
      clusters: rbdClustersOf(ctx),
      taken: (n) => ctx.bdevs.has(n),
      log: ctx.log,
      resize: (x, n) => ctx.resizeBdev(x, n),
    },
  );
  return ctx.register(b);
}

/** bdev_rbd_resize: grows the image, then the bdev as resizeBdev does (kernel devices are told). */
export function resizeRbd(ctx: ModuleContext, name: string, newSizeMib: number): Promise<void> {
  return growRbd(ctx.bdevs.get(name), newSizeMib);
}
