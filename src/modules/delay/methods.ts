// The delay bdev: bdev_delay_create / _update_latency / _delete. Latencies in microseconds.
import type { JSONSchemaType } from 'ajv';
import { updateDelayLatency, type LatencyType } from './delay.js';
import { deleteMethod, method, type ModuleContext } from '../../bdev/module.js';
import type { MethodSpec } from '../../method.js';
import { flag, int, str } from '../../method_form.js';
import { createDelay } from './ops.js';

const us = { type: 'integer', minimum: 0 } as const;

interface DelayCreate {
  name: string;
  base_bdev_name: string;
  uuid?: string;
  avg_read_latency: number;
  p99_read_latency: number;
  avg_write_latency: number;
  p99_write_latency: number;
}
const delayCreate: JSONSchemaType<DelayCreate> = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    base_bdev_name: { type: 'string' },
    uuid: { type: 'string', nullable: true },
    avg_read_latency: us,
    p99_read_latency: us,
    avg_write_latency: us,
    p99_write_latency: us,
  },
  required: ['name', 'base_bdev_name', 'avg_read_latency', 'p99_read_latency', 'avg_write_latency', 'p99_write_latency'],
  additionalProperties: false,
};

interface Update {
  delay_bdev_name: string;
  latency_type: LatencyType;
  latency_us: number;
}
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

export const DELAY_METHODS: readonly MethodSpec<ModuleContext>[] = [
  method(
    'bdev_delay_create',
    delayCreate,
    async (p, ctx) => {
      const b = await createDelay(ctx, {
        name: p.name,
        baseBdevName: p.base_bdev_name,
        uuid: p.uuid,
        avgReadLatency: p.avg_read_latency,
        p99ReadLatency: p.p99_read_latency,
        avgWriteLatency: p.avg_write_latency,
        p99WriteLatency: p.p99_write_latency,
      });
      return b.name;
    },
    {
      flags: [
        flag(['-b', '--base-bdev-name'], 'base_bdev_name'),
        flag(['-d', '--name'], 'name'),
        flag(['-r', '--avg-read-latency'], 'avg_read_latency', 'int', 'microseconds'),
        flag(['-t', '--nine-nine-read-latency'], 'p99_read_latency', 'int', 'microseconds'),
        flag(['-w', '--avg-write-latency'], 'avg_write_latency', 'int', 'microseconds'),
        flag(['-n', '--nine-nine-write-latency'], 'p99_write_latency', 'int', 'microseconds'),
        flag(['-u', '--uuid'], 'uuid'),
      ],
    },
  ),
  method(
    'bdev_delay_update_latency',
    update,
    (p, ctx) => {
      updateDelayLatency(ctx.bdevs.get(p.delay_bdev_name), p.latency_type, p.latency_us);
      return true;
    },
    {
      args: [str('delay_bdev_name'), str('latency_type'), int('latency_us')],
    },
  ),
  deleteMethod('bdev_delay_delete', 'delay'),
];
