// bdev_set_qos_limit, bdev_enable_histogram and bdev_get_histogram: SPDK's names, params and
// results (src/bdev/settings.ts says where ours differ).
import type { JSONSchemaType } from 'ajv';
import { UsageError } from '../../errors.js';
import type { MethodSpec } from '../../method.js';
import { flag, str } from '../../method_form.js';
import type { RpcHost } from '../dispatcher.js';
import { method } from './method.js';

const count = { type: 'integer', minimum: 0, nullable: true } as const;

interface SetQos {
  name: string;
  rw_ios_per_sec?: number;
  rw_mbytes_per_sec?: number;
  r_mbytes_per_sec?: number;
  w_mbytes_per_sec?: number;
}
const setQos: JSONSchemaType<SetQos> = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    rw_ios_per_sec: count,
    rw_mbytes_per_sec: count,
    r_mbytes_per_sec: count,
    w_mbytes_per_sec: count,
  },
  required: ['name'],
  additionalProperties: false,
};

interface EnableHistogram {
  name: string;
  enable: boolean;
  opc?: string;
  granularity?: number;
  min_nsec?: number;
  max_nsec?: number;
}
const enableHistogram: JSONSchemaType<EnableHistogram> = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    enable: { type: 'boolean' },
    opc: { type: 'string', nullable: true },
    granularity: count,
    min_nsec: count,
    max_nsec: count,
  },
  required: ['name', 'enable'],
  additionalProperties: false,
};

interface GetHistogram {
  name: string;
}
const getHistogram: JSONSchemaType<GetHistogram> = {
  type: 'object',
  properties: { name: { type: 'string' } },
  required: ['name'],
  additionalProperties: false,
};

export const BDEV_SETTINGS_METHODS: readonly MethodSpec<RpcHost>[] = [
  method(
    'bdev_set_qos_limit',
    setQos,
    ({ name, ...limits }, s) => {
      s.setQosLimit(name, limits);
      return true;
    },
    {
      args: [str('name')],
      flags: [
        flag(['--rw-ios-per-sec'], 'rw_ios_per_sec', 'int', 'READ+WRITE per second (rounded up to a multiple of 1000; 0: no limit)'),
        flag(['--rw-mbytes-per-sec'], 'rw_mbytes_per_sec', 'int', 'READ+WRITE MiB per second (0: no limit)'),
        flag(['--r-mbytes-per-sec'], 'r_mbytes_per_sec', 'int', 'READ MiB per second (0: no limit)'),
        flag(['--w-mbytes-per-sec'], 'w_mbytes_per_sec', 'int', 'WRITE MiB per second (0: no limit)'),
      ],
    },
  ),
  // Today's rpc.py takes --histogram/--no-histogram, the older one -e/-d: both are read.
  method(
    'bdev_enable_histogram',
    enableHistogram,
    (p, s) => {
      s.enableHistogram(p.name, { enable: p.enable, opc: p.opc, granularity: p.granularity, minNsec: p.min_nsec, maxNsec: p.max_nsec });
      return true;
    },
    {
      args: [str('name')],
      flags: [
        flag(['--histogram', '-e', '--enable'], 'enable', 'bool', 'enable it'),
        flag(['--no-histogram', '-d', '--disable'], 'disable', 'bool', 'disable it'),
        flag(['-o', '--opc'], 'opc', 'string', 'count only this I/O type (read, write, unmap, ...)'),
        flag(['--granularity'], 'granularity', 'int', 'buckets per power of two, as 2^N (default 7)'),
        flag(['--min-nsec'], 'min_nsec', 'int', 'latencies below count in the first bucket (default 1000)'),
        flag(['--max-nsec'], 'max_nsec', 'int', 'latencies at or above count in the last bucket (default 120 s)'),
      ],
      build: ({ disable, ...p }) => {
        if ((p['enable'] === true) === (disable === true))
          throw new UsageError('bdev_enable_histogram: give --histogram (-e) or --no-histogram (-d)');
        return { ...p, enable: disable !== true };
      },
      usage: ['bdev_enable_histogram NAME (--histogram | --no-histogram) [-o OPC] [--granularity N] [--min-nsec NS] [--max-nsec NS]'],
    },
  ),
  method('bdev_get_histogram', getHistogram, (p, s) => s.getHistogram(p.name), { args: [str('name')] }),
];
