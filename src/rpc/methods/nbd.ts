// Our export methods: nbd_export_add / nbd_export_remove / nbd_get_exports.
import type { JSONSchemaType } from 'ajv';
import type { Server } from '../../target.js';
import type { Registrar } from '../dispatcher.js';

interface ExportAdd { bdev_name: string; name?: string; readonly?: boolean; description?: string }
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

interface ExportRemove { name: string }
const exportRemove: JSONSchemaType<ExportRemove> = {
  type: 'object', properties: { name: { type: 'string' } }, required: ['name'], additionalProperties: false,
};

interface GetExports { name?: string }
const getExports: JSONSchemaType<GetExports> = {
  type: 'object', properties: { name: { type: 'string', nullable: true } }, additionalProperties: false,
};

export function registerNbdMethods(r: Registrar, s: Server): void {
  r.method('nbd_export_add', exportAdd, (p) => s.addExport(p.bdev_name, { name: p.name, readonly: p.readonly, description: p.description }).name);
  r.method('nbd_export_remove', exportRemove, (p) => { s.removeExport(p.name); return true; });
  r.method('nbd_get_exports', getExports, (p) => s.getExports(p.name));
}
