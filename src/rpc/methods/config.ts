// save_config / load_config / framework_get_config / framework_get_subsystems. SPDK composes save and load in rpc.py;
// here they are server methods, so `aionbd rpc save_config` is one request.
import type { JSONSchemaType } from 'ajv';
import { ConfigError } from '../../errors.js';
import type { MethodSpec } from '../../method.js';
import { str } from '../../method_form.js';
import { loadConfig } from '../config.js';
import type { RpcHost } from '../dispatcher.js';
import { method, method0 } from './method.js';

interface Entry {
  method: string;
  params?: Record<string, unknown>;
}
interface Sub {
  subsystem: string;
  config?: Entry[];
}
interface LoadConfig {
  subsystems: Sub[];
}
const entry: JSONSchemaType<Entry> = {
  type: 'object',
  properties: { method: { type: 'string' }, params: { type: 'object', nullable: true, required: [] } },
  required: ['method'],
  additionalProperties: false,
};
const loadConfigSchema: JSONSchemaType<LoadConfig> = {
  type: 'object',
  properties: {
    subsystems: {
      type: 'array',
      items: {
        type: 'object',
        properties: { subsystem: { type: 'string' }, config: { type: 'array', items: entry, nullable: true } },
        required: ['subsystem'],
        additionalProperties: false,
      },
    },
  },
  required: ['subsystems'],
  additionalProperties: false,
};

interface GetConfig {
  name: string;
}
const getConfig: JSONSchemaType<GetConfig> = {
  type: 'object',
  properties: { name: { type: 'string' } },
  required: ['name'],
  additionalProperties: false,
};

/**
 * Our subsystems in the order save_config writes them and a config is applied (SPDK's
 * initialization order), with what each needs first, as SPDK's framework_get_subsystems says it.
 */
export const SUBSYSTEMS: readonly { subsystem: string; depends_on: string[] }[] = [
  { subsystem: 'bdev', depends_on: [] },
  { subsystem: 'nbd', depends_on: ['bdev'] },
];

export const CONFIG_METHODS: readonly MethodSpec<RpcHost>[] = [
  method0('save_config', (s) => s.saveConfig()),
  method0('framework_get_subsystems', () => SUBSYSTEMS.map((x) => ({ subsystem: x.subsystem, depends_on: [...x.depends_on] }))),
  method(
    'framework_get_config',
    getConfig,
    (p, s) => {
      const sub = s.saveConfig().subsystems.find((x) => x.subsystem === p.name);
      if (sub === undefined) throw new ConfigError(`no subsystem "${p.name}" (aionbd has: bdev, nbd)`);
      return sub.config;
    },
    { args: [str('name')] },
  ),
  // Paths in the config are checked like any RPC path: the entries run with the caller's context.
  method('load_config', loadConfigSchema, async (p, s, call) => {
    await loadConfig(s, p, call);
    return true;
  }),
];
