// The error module's operation on a target: bdev_error_create.
import type { Bdev } from '../../bdev/bdev.js';
import { createErrorBdev } from './error.js';
import type { ModuleContext } from '../../bdev/module.js';
import { checkName, checkUuid } from '../../bdev/names.js';

export interface ErrorCreateOptions {
  uuid?: string | undefined;
  name?: string | undefined;
}

/** SPDK names it EE_<base>; `name` (aionbd's own) chooses another. */
export async function createError(ctx: ModuleContext, baseName: string, opts: ErrorCreateOptions = {}): Promise<Bdev> {
  if (opts.name !== undefined) checkName(opts.name);
  const base = ctx.bdevs.get(baseName);
  return ctx.register(createErrorBdev(base, { uuid: checkUuid(opts.uuid), name: opts.name }), { claims: [base] });
}
