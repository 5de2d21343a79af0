// The delay bdev: bdev_delay_create / _update_latency / _delete. Latencies in microseconds.
import type { JSONSchemaType } from 'ajv';
import type { LatencyType } from '../../bdev/delay.js';
import type { Server } from '../../target.js';
import type { Registrar } from '../dispatcher.js';
import { byName } from './aio.js';

const us = { type: 'integer', minimum: 0 } as const;

interface DelayCreate {
  name: string; base_bdev_name: string; uuid?: string;
  avg_read_latency: number; p99_read_latency: number; avg_write_latency: number; p99_write_latency: number;
}
const delayCreate: JSONSchemaType<DelayCreate> = {
  type: 'object',
  properties: {
    name: { type: 'string' }, base_bdev_name: { type: 'string' }, uuid: { type: 'string', nullable: true },
    avg_read_latency: us, p99_read_latency: us, avg_write_latency: us, p99_write_latency: us,
  },
  required: ['name', 'base_bdev_name', 'avg_read_latency', 'p99_read_latency', 'avg_write_latency', 'p99_write_latency'],
  additionalProperties: false,
};

interface Update { delay_bdev_name: string; latency_type: LatencyType; latency_us: number }
const update: JSONSchemaType<Update> = {
  type: 'object',
  properties: {
    delay_bdev_name: { type: 'string' },
    latency_type: { type: 'string', enum: ['avg_read', 'p99_read', 'avg_write', 'p99_write'] },
    latency_us: us,
  },
  required: ['delay_bdev_name', 'latency_type', 'latency_us'],
  additionalProperties: false,
};

export function registerDelayMethods(r: Registrar, s: Server): void {
  r.method('bdev_delay_create', delayCreate, async (p) => {
    const b = await s.createDelay({
      name: p.name, baseBdevName: p.base_bdev_name, uuid: p.uuid,
      avgReadLatency: p.avg_read_latency, p99ReadLatency: p.p99_read_latency,
      avgWriteLatency: p.avg_write_latency, p99WriteLatency: p.p99_write_latency,
    });
    return b.name;
  });
  r.method('bdev_delay_update_latency', update, (p) => { s.updateDelayLatency(p.delay_bdev_name, p.latency_type, p.latency_us); return true; });
  r.method('bdev_delay_delete', byName, async (p) => { await s.deleteBdev(p.name, 'delay'); return true; });
}
