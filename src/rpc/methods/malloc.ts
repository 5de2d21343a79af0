// bdev_malloc_create / bdev_malloc_delete.
import type { JSONSchemaType } from 'ajv';
import type { Server } from '../../target.js';
import type { Registrar } from '../dispatcher.js';
import { byName } from './aio.js';

interface MallocCreate { block_size: number; num_blocks: number; name?: string; uuid?: string; optimal_io_boundary?: number; physical_block_size?: number }
const mallocCreate: JSONSchemaType<MallocCreate> = {
  type: 'object',
  properties: {
    block_size: { type: 'integer', minimum: 1 },
    num_blocks: { type: 'integer', minimum: 1 },
    name: { type: 'string', nullable: true },
    uuid: { type: 'string', nullable: true },
    // Accepted as SPDK does; our bdev layer needs no split hint for RAM.
    optimal_io_boundary: { type: 'integer', minimum: 0, nullable: true },
    physical_block_size: { type: 'integer', minimum: 0, nullable: true },
  },
  required: ['block_size', 'num_blocks'],
  additionalProperties: false,
};

export function registerMallocMethods(r: Registrar, s: Server): void {
  r.method('bdev_malloc_create', mallocCreate, async (p) => {
    const b = await s.createMalloc({ name: p.name, blockSize: p.block_size, numBlocks: p.num_blocks, uuid: p.uuid });
    return b.name;
  });
  r.method('bdev_malloc_delete', byName, async (p) => { await s.deleteBdev(p.name, 'malloc'); return true; });
}
