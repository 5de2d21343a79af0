// The passthru module's operation on a target: bdev_passthru_create.
import type { Bdev } from '../../bdev/bdev.js';
import type { ModuleContext } from '../../bdev/module.js';
import { checkName, checkUuid } from '../../bdev/names.js';
import { createPassthruBdev } from './passthru.js';

export interface PassthruParams {
  baseBdevName: string;
  name: string;
  uuid?: string | undefined;
}

/** Registers the new bdev with a claim on its base, so nothing else writes to the base behind it. */
export async function createPassthru(ctx: ModuleContext, p: PassthruParams): Promise<Bdev> {
  checkName(p.name);
  const base = ctx.bdevs.get(p.baseBdevName);
  return ctx.register(createPassthruBdev(base, { name: p.name, uuid: checkUuid(p.uuid) }), { claims: [base] });
}
