// The delay module's operation on a target: bdev_delay_create.
import type { Bdev } from '../../bdev/bdev.js';
import { createDelayBdev, type DelayLatencies } from './delay.js';
import type { ModuleContext } from '../../bdev/module.js';
import { checkName, checkUuid } from '../../bdev/names.js';

export interface DelayParams extends DelayLatencies {
  name: string;
  baseBdevName: string;
  uuid?: string | undefined;
}

export async function createDelay(ctx: ModuleContext, p: DelayParams): Promise<Bdev> {
  checkName(p.name);
  const base = ctx.bdevs.get(p.baseBdevName);
  return ctx.register(createDelayBdev(base, { ...p, uuid: checkUuid(p.uuid) }), { claims: [base] });
}
