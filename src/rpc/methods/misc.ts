// rpc_get_methods and aionbd_get_version (our spdk_get_version).
import type { JSONSchemaType } from 'ajv';
import { packageVersion } from '../../version.js';
import type { Registrar } from '../dispatcher.js';

interface GetMethods { current?: boolean; include_aliases?: boolean }
const getMethods: JSONSchemaType<GetMethods> = {
  type: 'object',
  properties: { current: { type: 'boolean', nullable: true }, include_aliases: { type: 'boolean', nullable: true } },
  additionalProperties: false,
};

export function registerMiscMethods(r: Registrar): void {
  // Every method is callable in every state (we have no start-up phase), so "current" changes nothing.
  r.method('rpc_get_methods', getMethods, () => r.names());
  r.method0('aionbd_get_version', () => {
    const v = packageVersion();
    const m = /^(\d+)\.(\d+)\.(\d+)(.*)$/.exec(v);
    return {
      version: `aionbd v${v}`,
      fields: { major: Number(m?.[1] ?? 0), minor: Number(m?.[2] ?? 0), patch: Number(m?.[3] ?? 0), suffix: m?.[4] ?? '' },
    };
  });
}
