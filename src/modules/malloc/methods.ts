// bdev_malloc_create / bdev_malloc_delete, with SPDK's parameters and rpc.py's forms.
import type { JSONSchemaType } from 'ajv';
import { deleteMethod, method, type ModuleContext } from '../../bdev/module.js';
import type { MethodSpec } from '../../method.js';
import { flag, sendsBlockCount, SIZE_MB_BLOCK_SIZE } from '../../method_form.js';
import { createMalloc } from './ops.js';

interface MallocCreate {
  block_size: number;
  num_blocks: number;
  name?: string;
  uuid?: string;
  optimal_io_boundary?: number;
  physical_block_size?: number;
}
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

export const MALLOC_METHODS: readonly MethodSpec<ModuleContext>[] = [
  method(
    'bdev_malloc_create',
    mallocCreate,
    async (p, ctx) => {
      const b = await createMalloc(ctx, { name: p.name, blockSize: p.block_size, numBlocks: p.num_blocks, uuid: p.uuid });
      return b.name;
    },
    {
      args: [...SIZE_MB_BLOCK_SIZE],
      flags: [
        flag(['-b', '--name'], 'name'),
        flag(['-u', '--uuid'], 'uuid'),
        flag(['-o', '--optimal-io-boundary'], 'optimal_io_boundary', 'int'),
      ],
      build: sendsBlockCount,
    },
  ),
  deleteMethod('bdev_malloc_delete', 'malloc'),
];
