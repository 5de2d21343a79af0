// The malloc module's operation on a target: bdev_malloc_create.
import type { Bdev } from '../../bdev/bdev.js';
import { createMallocBdev } from './malloc.js';
import type { ModuleContext } from '../../bdev/module.js';
import { checkName, checkUuid } from '../../bdev/names.js';

export interface MallocParams {
  /** Default: Malloc0, Malloc1, ... as SPDK. */
  name?: string | undefined;
  blockSize: number;
  numBlocks: number;
  uuid?: string | undefined;
}

export async function createMalloc(ctx: ModuleContext, p: MallocParams): Promise<Bdev> {
  if (p.name !== undefined) checkName(p.name);
  return ctx.register(createMallocBdev({ ...p, uuid: checkUuid(p.uuid) }));
}
