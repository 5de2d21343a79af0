// The raid module's operations on a target: bdev_raid_create and bdev_raid_get_bdevs.
import type { Bdev } from '../../bdev/bdev.js';
import type { ModuleContext } from '../../bdev/module.js';
import { checkName, checkUuid } from '../../bdev/names.js';
import { createRaid0Bdev, describeRaid, isRaid0Level } from './raid0.js';
import { InvalidBdevError } from '../../errors.js';

export interface RaidParams {
  name: string;
  raidLevel: string;
  baseBdevs: string[];
  stripSizeKb: number;
  uuid?: string | undefined;
}

export async function createRaid(ctx: ModuleContext, p: RaidParams): Promise<Bdev> {
  checkName(p.name);
  if (!isRaid0Level(p.raidLevel)) throw new InvalidBdevError(`raid level "${p.raidLevel}" is not supported (only raid0)`);
  const bases = p.baseBdevs.map((n) => ctx.bdevs.get(n));
  return ctx.register(createRaid0Bdev(bases, { name: p.name, stripSizeKb: p.stripSizeKb, uuid: checkUuid(p.uuid) }), { claims: bases });
}

/** bdev_raid_get_bdevs: every raid is "online" (ours never wait for a base). */
export function raidBdevs(ctx: ModuleContext, category: string): Record<string, unknown>[] {
  const raids = ctx.bdevs.list().filter((b) => b.module === 'raid');
  return category === 'all' || category === 'online' ? raids.map(describeRaid) : [];
}
