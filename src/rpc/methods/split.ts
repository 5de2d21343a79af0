// bdev_split_create / bdev_split_delete.
import type { JSONSchemaType } from 'ajv';
import type { Server } from '../../target.js';
import type { Registrar } from '../dispatcher.js';

interface SplitCreate { base_bdev: string; split_count: number; split_size_mb?: number }
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

interface SplitDelete { base_bdev: string }
const splitDelete: JSONSchemaType<SplitDelete> = {
  type: 'object', properties: { base_bdev: { type: 'string' } }, required: ['base_bdev'], additionalProperties: false,
};

export function registerSplitMethods(r: Registrar, s: Server): void {
  r.method('bdev_split_create', splitCreate, (p) => s.createSplit(p.base_bdev, p.split_count, p.split_size_mb));
  r.method('bdev_split_delete', splitDelete, async (p) => { await s.deleteSplit(p.base_bdev); return true; });
}
