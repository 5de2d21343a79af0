// The split module's operations on a target: bdev_split_create and bdev_split_delete.
import type { Bdev } from '../../bdev/bdev.js';
import type { ModuleContext } from '../../bdev/module.js';
import { createSplitBdevs, splitBaseOf } from './split.js';
import { BdevNotFoundError } from '../../errors.js';

/** bdev_split_create: the parts share one claim on the base; returns their names. */
export async function createSplit(ctx: ModuleContext, baseName: string, splitCount: number, splitSizeMb?: number): Promise<string[]> {
  const base = ctx.bdevs.get(baseName);
  const parts = createSplitBdevs(base, { splitCount, splitSizeMb });
  const added: Bdev[] = [];
  try {
    for (const p of parts) added.push(ctx.bdevs.add(p, { claims: [base], claimGroup: base.name }));
    for (const p of parts) await ctx.examine(p);
  } catch (err) {
    for (const p of added) await ctx.bdevs.delete(p.name);
    for (const p of parts) if (!added.includes(p)) await p.close();
    throw err;
  }
  return parts.map((p) => p.name);
}

/** bdev_split_delete: deletes every part cut from `baseName`. */
export async function deleteSplit(ctx: ModuleContext, baseName: string): Promise<void> {
  const base = ctx.bdevs.get(baseName);
  const parts = ctx.bdevs.list().filter((b) => splitBaseOf(b) === base);
  if (parts.length === 0) throw new BdevNotFoundError(`${baseName}p0`);
  for (const p of parts) await ctx.bdevs.delete(p.name, 'split');
}
