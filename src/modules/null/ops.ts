// The null module's operations on a target: bdev_null_create and bdev_null_resize.
import { driverOf, type Bdev } from '../../bdev/bdev.js';
import { checkGeometry } from '../../bdev/geometry.js';
import type { ModuleContext } from '../../bdev/module.js';
import { checkName, checkUuid } from '../../bdev/names.js';
import { createNullBdev, NullDriver, type NullBdevOptions } from './null.js';

const MiB = 2 ** 20;

export type NullParams = NullBdevOptions;

export async function createNull(ctx: ModuleContext, p: NullParams): Promise<Bdev> {
  checkName(p.name);
  return ctx.register(createNullBdev({ ...p, uuid: checkUuid(p.uuid) }));
}

/**
 * bdev_null_resize: the new size in MiB, in whole blocks. SPDK only grows a null bdev; here it
 * may shrink too, as the target allows any bdev to (not under a claim, not below what connected
 * clients were told).
 */
export async function resizeNull(ctx: ModuleContext, name: string, newSizeMib: number): Promise<void> {
  const b = ctx.bdevs.get(name);
  driverOf(b, NullDriver, 'null'); // another module's bdev: BdevWrongModuleError
  const blocks = Math.floor((newSizeMib * MiB) / b.blockSize);
  checkGeometry(b.blockSize, blocks);
  await ctx.resizeBdev(b, blocks);
}
