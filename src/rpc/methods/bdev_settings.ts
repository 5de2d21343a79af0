// bdev_set_qos_limit, bdev_enable_histogram and bdev_get_histogram: SPDK's names, params and
// results (src/bdev/settings.ts says where ours differ).
import type { JSONSchemaType } from 'ajv';
import type { Server } from '../../target.js';
import type { Registrar } from '../dispatcher.js';

const count = { type: 'integer', minimum: 0, nullable: true } as const;

interface SetQos { name: string; rw_ios_per_sec?: number; rw_mbytes_per_sec?: number; r_mbytes_per_sec?: number; w_mbytes_per_sec?: number }
const setQos: JSONSchemaType<SetQos> = {
  type: 'object',
  properties: { name: { type: 'string' }, rw_ios_per_sec: count, rw_mbytes_per_sec: count, r_mbytes_per_sec: count, w_mbytes_per_sec: count },
  required: ['name'],
  additionalProperties: false,
};

interface EnableHistogram { name: string; enable: boolean; opc?: string; granularity?: number; min_nsec?: number; max_nsec?: number }
const enableHistogram: JSONSchemaType<EnableHistogram> = {
  type: 'object',
  properties: {
    name: { type: 'string' }, enable: { type: 'boolean' }, opc: { type: 'string', nullable: true },
    granularity: count, min_nsec: count, max_nsec: count,
  },
  required: ['name', 'enable'],
  additionalProperties: false,
};

interface GetHistogram { name: string }
const getHistogram: JSONSchemaType<GetHistogram> = {
  type: 'object', properties: { name: { type: 'string' } }, required: ['name'], additionalProperties: false,
};

export function registerBdevSettingsMethods(r: Registrar, s: Server): void {
  r.method('bdev_set_qos_limit', setQos, ({ name, ...limits }) => { s.setQosLimit(name, limits); return true; });
  r.method('bdev_enable_histogram', enableHistogram, (p) => {
    s.enableHistogram(p.name, { enable: p.enable, opc: p.opc, granularity: p.granularity, minNsec: p.min_nsec, maxNsec: p.max_nsec });
    return true;
  });
  r.method('bdev_get_histogram', getHistogram, (p) => s.getHistogram(p.name));
}
