// bdev_null_create / _delete / _resize, with SPDK's parameters and rpc.py's forms.
import type { JSONSchemaType } from 'ajv';
import { deleteMethod, method, type ModuleContext } from '../../bdev/module.js';
import type { MethodSpec } from '../../method.js';
import { flag, MIB, sendsBlockCount, size, SIZE_MB_BLOCK_SIZE, str } from '../../method_form.js';
import { createNull, resizeNull } from './ops.js';

interface NullCreate {
  name: string;
  num_blocks: number;
  block_size: number;
  uuid?: string;
  physical_block_size?: number;
  md_size?: number;
  dif_type?: number;
  dif_is_head_of_md?: boolean;
  dif_pi_format?: number;
}
const nullCreate: JSONSchemaType<NullCreate> = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    num_blocks: { type: 'integer', minimum: 1 },
    block_size: { type: 'integer', minimum: 1 },
    uuid: { type: 'string', nullable: true },
    // Accepted as SPDK does; nothing below a null bdev cares about its physical block size.
    physical_block_size: { type: 'integer', minimum: 0, nullable: true },
    // SPDK's save_config writes these; aionbd bdevs carry no metadata, so only "none" is taken.
    md_size: { type: 'integer', minimum: 0, maximum: 0, nullable: true },
    dif_type: { type: 'integer', minimum: 0, maximum: 0, nullable: true },
    dif_is_head_of_md: { type: 'boolean', nullable: true },
    dif_pi_format: { type: 'integer', minimum: 0, maximum: 0, nullable: true },
  },
  required: ['name', 'num_blocks', 'block_size'],
  additionalProperties: false,
};

interface NullResize {
  name: string;
  new_size: number;
}
const nullResize: JSONSchemaType<NullResize> = {
  type: 'object',
  properties: { name: { type: 'string' }, new_size: { type: 'integer', minimum: 1 } },
  required: ['name', 'new_size'],
  additionalProperties: false,
};

export const NULL_METHODS: readonly MethodSpec<ModuleContext>[] = [
  method(
    'bdev_null_create',
    nullCreate,
    async (p, ctx) => {
      const b = await createNull(ctx, { name: p.name, blockSize: p.block_size, numBlocks: p.num_blocks, uuid: p.uuid });
      return b.name;
    },
    {
      args: [str('name'), ...SIZE_MB_BLOCK_SIZE],
      flags: [flag(['-u', '--uuid'], 'uuid'), flag(['-p', '--physical-block-size'], 'physical_block_size', 'int')],
      build: sendsBlockCount,
    },
  ),
  deleteMethod('bdev_null_delete', 'null'),
  method(
    'bdev_null_resize',
    nullResize,
    async (p, ctx) => {
      await resizeNull(ctx, p.name, p.new_size);
      return true;
    },
    {
      args: [str('name'), size('new_size', MIB, false, 'the new size', 'MIB')],
    },
  ),
];
