// Our export methods: nbd_export_add / nbd_export_remove / nbd_get_exports.
import type { JSONSchemaType } from 'ajv';
import { byName, type MethodSpec } from '../../method.js';
import { flag, str } from '../../method_form.js';
import type { RpcHost } from '../dispatcher.js';
import { method } from './method.js';

interface ExportAdd {
  bdev_name: string;
  name?: string;
  readonly?: boolean;
  description?: string;
}
const exportAdd: JSONSchemaType<ExportAdd> = {
  type: 'object',
  properties: {
    bdev_name: { type: 'string' },
    name: { type: 'string', nullable: true },
    readonly: { type: 'boolean', nullable: true },
    description: { type: 'string', maxLength: 4096, nullable: true },
  },
  required: ['bdev_name'],
  additionalProperties: false,
};

interface GetExports {
  name?: string;
}
const getExports: JSONSchemaType<GetExports> = {
  type: 'object',
  properties: { name: { type: 'string', nullable: true } },
  additionalProperties: false,
};

export const NBD_METHODS: readonly MethodSpec<RpcHost>[] = [
  method(
    'nbd_export_add',
    exportAdd,
    (p, s) => s.addExport(p.bdev_name, { name: p.name, readonly: p.readonly, description: p.description }).name,
    {
      args: [str('bdev_name')],
      flags: [
        flag(['-n', '--name'], 'name', 'string', "the export name (default: the bdev's)"),
        flag(['-r', '--readonly'], 'readonly', 'bool'),
        flag(['-d', '--description'], 'description'),
      ],
    },
  ),
  method(
    'nbd_export_remove',
    byName,
    (p, s) => {
      s.removeExport(p.name);
      return true;
    },
    { args: [str('name')] },
  ),
  method('nbd_get_exports', getExports, (p, s) => s.getExports(p.name), { flags: [flag(['-n', '--name'], 'name')] }),
];
