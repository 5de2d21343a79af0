// Generic bdev methods: bdev_get_bdevs, bdev_get_iostat, bdev_reset_iostat, bdev_wait_for_examine.
import type { JSONSchemaType } from 'ajv';
import type { ResetMode } from '../../bdev/iostat.js';
import type { MethodSpec } from '../../method.js';
import { flag } from '../../method_form.js';
import type { RpcHost } from '../dispatcher.js';
import { method, method0 } from './method.js';

const RESET_MODES: ResetMode[] = ['all', 'maxmin', 'error', 'none'];

interface GetBdevs {
  name?: string;
  timeout?: number;
}
const getBdevs: JSONSchemaType<GetBdevs> = {
  type: 'object',
  properties: { name: { type: 'string', nullable: true }, timeout: { type: 'integer', minimum: 0, nullable: true } },
  additionalProperties: false,
};

interface GetIostat {
  name?: string;
  names?: string[];
  per_channel?: boolean;
  reset_mode?: ResetMode;
  latency_histograms?: boolean;
}
const getIostat: JSONSchemaType<GetIostat> = {
  type: 'object',
  properties: {
    name: { type: 'string', nullable: true },
    names: { type: 'array', items: { type: 'string' }, nullable: true },
    per_channel: { type: 'boolean', nullable: true },
    reset_mode: { type: 'string', enum: RESET_MODES, nullable: true },
    // aionbd's own: each bdev's latency histograms (what `aionbd iostat` reads its p99 from).
    latency_histograms: { type: 'boolean', nullable: true },
  },
  additionalProperties: false,
};

interface ResetIostat {
  name?: string;
  mode?: ResetMode;
}
const resetIostat: JSONSchemaType<ResetIostat> = {
  type: 'object',
  properties: { name: { type: 'string', nullable: true }, mode: { type: 'string', enum: RESET_MODES, nullable: true } },
  additionalProperties: false,
};

// SPDK writes bdev_set_options first in every saved config: accepted so that such a file loads;
// our bdev layer has no I/O pools or caches to size.
interface SetOptions {
  bdev_io_pool_size?: number;
  bdev_io_cache_size?: number;
  bdev_auto_examine?: boolean;
  iobuf_small_cache_size?: number;
  iobuf_large_cache_size?: number;
  small_buf_pool_size?: number;
  large_buf_pool_size?: number;
}
const int = { type: 'integer', minimum: 0, nullable: true } as const;
const setOptions: JSONSchemaType<SetOptions> = {
  type: 'object',
  properties: {
    bdev_io_pool_size: int,
    bdev_io_cache_size: int,
    bdev_auto_examine: { type: 'boolean', nullable: true },
    iobuf_small_cache_size: int,
    iobuf_large_cache_size: int,
    small_buf_pool_size: int,
    large_buf_pool_size: int,
  },
  additionalProperties: false,
};

export const BDEV_METHODS: readonly MethodSpec<RpcHost>[] = [
  method('bdev_set_options', setOptions, () => true),
  // Our bdevs exist as soon as their create method answers, so "timeout" never needs to wait.
  method('bdev_get_bdevs', getBdevs, (p, s) => s.getBdevs(p.name), {
    flags: [
      flag(['-b', '--name'], 'name', 'string', 'only this bdev (a name or an alias)'),
      flag(['-t', '--timeout'], 'timeout', 'int', 'milliseconds to wait for it to appear'),
    ],
  }),
  method(
    'bdev_get_iostat',
    getIostat,
    (p, s) =>
      s.iostat({
        names: p.names ?? (p.name !== undefined ? [p.name] : undefined),
        perChannel: p.per_channel,
        resetMode: p.reset_mode,
        latencyHistograms: p.latency_histograms,
      }),
    {
      flags: [
        flag(['-b', '--name'], 'name', 'string', 'only this bdev'),
        flag(['--names'], 'names', 'csv', 'only these bdevs, comma-separated', 'A,B'),
        flag(['-c', '--per-channel'], 'per_channel', 'bool'),
        flag(['--reset-mode'], 'reset_mode'),
      ],
    },
  ),
  method(
    'bdev_reset_iostat',
    resetIostat,
    (p, s) => {
      s.resetIostat(p.name, p.mode ?? 'all');
      return true;
    },
    {
      flags: [flag(['-b', '--name'], 'name'), flag(['-m', '--mode'], 'mode')],
    },
  ),
  // Examine is synchronous here: every create has finished before it answers.
  method0('bdev_wait_for_examine', () => true),
];
