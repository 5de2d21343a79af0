// rpc_get_methods, and our version as aionbd_get_version and as spdk_get_version (the name
// SPDK's users type from habit), in SPDK's result shape.
import type { JSONSchemaType } from 'ajv';
import type { MethodSpec } from '../../method.js';
import { flag } from '../../method_form.js';
import { packageVersion } from '../../version.js';
import type { RpcHost } from '../dispatcher.js';
import { method, method0 } from './method.js';

interface GetMethods {
  current?: boolean;
  include_aliases?: boolean;
}
const getMethods: JSONSchemaType<GetMethods> = {
  type: 'object',
  properties: { current: { type: 'boolean', nullable: true }, include_aliases: { type: 'boolean', nullable: true } },
  additionalProperties: false,
};

export const MISC_METHODS: readonly MethodSpec<RpcHost>[] = [
  // Every method is callable in every state (we have no start-up phase), so "current" changes nothing.
  method('rpc_get_methods', getMethods, (_p, s) => s.rpc.names(), {
    flags: [flag(['-c', '--current'], 'current', 'bool'), flag(['-i', '--include-aliases'], 'include_aliases', 'bool')],
  }),
  ...['aionbd_get_version', 'spdk_get_version'].map((name) => method0(name, version)),
];

function version(): { version: string; fields: { major: number; minor: number; patch: number; suffix: string } } {
  const v = packageVersion();
  const m = /^(\d+)\.(\d+)\.(\d+)(.*)$/.exec(v);
  return {
    version: `aionbd v${v}`,
    fields: { major: Number(m?.[1] ?? 0), minor: Number(m?.[2] ?? 0), patch: Number(m?.[3] ?? 0), suffix: m?.[4] ?? '' },
  };
}
