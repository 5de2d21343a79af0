// bdev_split_create / bdev_split_delete.
import type { JSONSchemaType } from 'ajv';
import { method, type ModuleContext } from '../../bdev/module.js';
import type { MethodSpec } from '../../method.js';
import { int, MIB, sizeFlag, str } from '../../method_form.js';
import { createSplit, deleteSplit } from './ops.js';

interface SplitCreate {
  base_bdev: string;
  split_count: number;
  split_size_mb?: number;
}
const splitCreate: JSONSchemaType<SplitCreate> = {
  type: 'object',
  properties: {
    base_bdev: { type: 'string' },
    split_count: { type: 'integer', minimum: 1 },
    split_size_mb: { type: 'integer', minimum: 0, nullable: true },
  },
  required: ['base_bdev', 'split_count'],
  additionalProperties: false,
};

interface SplitDelete {
  base_bdev: string;
}
const splitDelete: JSONSchemaType<SplitDelete> = {
  type: 'object',
  properties: { base_bdev: { type: 'string' } },
  required: ['base_bdev'],
  additionalProperties: false,
};

export const SPLIT_METHODS: readonly MethodSpec<ModuleContext>[] = [
  method('bdev_split_create', splitCreate, (p, ctx) => createSplit(ctx, p.base_bdev, p.split_count, p.split_size_mb), {
    args: [str('base_bdev'), int('split_count')],
    flags: [sizeFlag(['-s', '--split-size-mb'], 'split_size_mb', MIB, 'the size of each part', 'MB')],
  }),
  method(
    'bdev_split_delete',
    splitDelete,
    async (p, ctx) => {
      await deleteSplit(ctx, p.base_bdev);
      return true;
    },
    { args: [str('base_bdev')] },
  ),
];
