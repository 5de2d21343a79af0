// The error bdev: bdev_error_create / _delete / _inject_error / _resume_pending.
import type { JSONSchemaType } from 'ajv';
import { ERROR_TYPES, INJECT_IO_TYPES, type ErrorType, type InjectIoType } from '../../bdev/error.js';
import type { Server } from '../../target.js';
import type { Registrar } from '../dispatcher.js';
import { byName } from './aio.js';

// `name` is aionbd's own (SPDK always names it EE_<base_name>): `rpc.py bdev_error_create BASE NAME`.
interface ErrorCreate { base_name: string; name?: string; uuid?: string }
const errorCreate: JSONSchemaType<ErrorCreate> = {
  type: 'object',
  properties: { base_name: { type: 'string' }, name: { type: 'string', nullable: true }, uuid: { type: 'string', nullable: true } },
  required: ['base_name'],
  additionalProperties: false,
};

interface Inject {
  name: string; io_type: InjectIoType; error_type: ErrorType;
  num?: number; queue_depth?: number; corrupt_offset?: number; corrupt_value?: number;
}
const inject: JSONSchemaType<Inject> = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    io_type: { type: 'string', enum: [...INJECT_IO_TYPES] },
    error_type: { type: 'string', enum: [...ERROR_TYPES] },
    num: { type: 'integer', minimum: 0, nullable: true },
    queue_depth: { type: 'integer', minimum: 0, nullable: true },
    corrupt_offset: { type: 'integer', minimum: 0, nullable: true },
    corrupt_value: { type: 'integer', minimum: 0, maximum: 255, nullable: true },
  },
  required: ['name', 'io_type', 'error_type'],
  additionalProperties: false,
};

export function registerErrorMethods(r: Registrar, s: Server): void {
  // SPDK answers true here, not the new name.
  r.method('bdev_error_create', errorCreate, async (p) => { await s.createError(p.base_name, { uuid: p.uuid, name: p.name }); return true; });
  r.method('bdev_error_delete', byName, async (p) => { await s.deleteBdev(p.name, 'error'); return true; });
  r.method('bdev_error_inject_error', inject, (p) => {
    s.injectError(p.name, {
      ioType: p.io_type, errorType: p.error_type, num: p.num, queueDepth: p.queue_depth,
      corruptOffset: p.corrupt_offset, corruptValue: p.corrupt_value,
    });
    return true;
  });
  r.method('bdev_error_resume_pending', byName, (p) => { s.resumePending(p.name); return true; });
}
