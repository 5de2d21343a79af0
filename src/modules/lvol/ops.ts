// The lvol module's state and operations on a target: its lvstores, and the lvol RPCs whose
// work goes beyond one Lvstores call (a UUID to check, kernel devices to tell of a resize).
import { ModuleState, type ModuleContext } from '../../bdev/module.js';
import { Lvstores } from './lvstores.js';
import { checkUuid } from '../../bdev/names.js';

const stores = new ModuleState((ctx) => new Lvstores(ctx.bdevs, ctx.log));

/** The target's lvstores: found on new bdevs (examine) or made by bdev_lvol_create_lvstore. */
export function lvstoresOf(ctx: ModuleContext): Lvstores {
  return stores.of(ctx);
}

/** The target is closing: its lvol bdevs are closed by the registry; forget the stores. */
export function forgetLvstores(ctx: ModuleContext): void {
  stores.peek(ctx)?.clear();
}

export interface LvolParams {
  lvsName: string;
  lvolName: string;
  sizeMib: number;
  thin?: boolean | undefined;
  uuid?: string | undefined;
}

/** bdev_lvol_create: returns the lvol's UUID, which is its bdev name (alias "lvs/lvol"). */
export function createLvol(ctx: ModuleContext, p: LvolParams): Promise<string> {
  return lvstoresOf(ctx).createLvol(p.lvsName, p.lvolName, p.sizeMib, p.thin ?? false, checkUuid(p.uuid));
}

/**
 * bdev_lvol_resize: attached kernel devices get the new size before this resolves, network
 * clients on their next connection. Shrinking below what connected clients were told needs
 * `force`.
 */
export async function resizeLvol(ctx: ModuleContext, name: string, sizeMib: number, force = false): Promise<void> {
  await lvstoresOf(ctx).resizeLvol(name, sizeMib, (b, bytes) => ctx.checkShrink(b, bytes, force));
  await ctx.sizesChanged();
}
