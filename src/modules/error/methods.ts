// The error bdev: bdev_error_create / _delete / _inject_error / _resume_pending.
import type { JSONSchemaType } from 'ajv';
import { ERROR_TYPES, INJECT_IO_TYPES, injectError, resumePending, type ErrorType, type InjectIoType } from './error.js';
import { deleteMethod, method, type ModuleContext } from '../../bdev/module.js';
import { byName, type MethodSpec } from '../../method.js';
import { flag, str } from '../../method_form.js';
import { createError } from './ops.js';

// `name` is aionbd's own (SPDK always names it EE_<base_name>): `rpc.py bdev_error_create BASE NAME`.
interface ErrorCreate {
  base_name: string;
  name?: string;
  uuid?: string;
}
const errorCreate: JSONSchemaType<ErrorCreate> = {
  type: 'object',
  properties: { base_name: { type: 'string' }, name: { type: 'string', nullable: true }, uuid: { type: 'string', nullable: true } },
  required: ['base_name'],
  additionalProperties: false,
};

interface Inject {
  name: string;
  io_type: InjectIoType;
  error_type: ErrorType;
  num?: number;
  queue_depth?: number;
  corrupt_offset?: number;
  corrupt_value?: number;
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

export const ERROR_METHODS: readonly MethodSpec<ModuleContext>[] = [
  // SPDK answers true here, not the new name.
  method(
    'bdev_error_create',
    errorCreate,
    async (p, ctx) => {
      await createError(ctx, p.base_name, { uuid: p.uuid, name: p.name });
      return true;
    },
    {
      args: [
        str('base_name', false, 'the bdev to pass I/O through to (the error bdev claims it)', 'BASE'),
        str('name', true, "the new bdev's name (default EE_BASE)"),
      ],
      flags: [flag(['--uuid', '-u'], 'uuid')],
      note:
        "NAME is aionbd's own: SPDK's rpc.py takes only BASE and always names the bdev EE_BASE (a UUID is given with --uuid, " +
        'never in this position), so "bdev_error_create aio_test error_test" makes "error_test" here. Sent as the "name" param, ' +
        "which SPDK's server does not know. The result is true, as in SPDK, not the name.",
    },
  ),
  deleteMethod('bdev_error_delete', 'error'),
  method(
    'bdev_error_inject_error',
    inject,
    (p, ctx) => {
      injectError(ctx.bdevs.get(p.name), {
        ioType: p.io_type,
        errorType: p.error_type,
        num: p.num,
        queueDepth: p.queue_depth,
        corruptOffset: p.corrupt_offset,
        corruptValue: p.corrupt_value,
      });
      return true;
    },
    {
      args: [
        str('name'),
        str('io_type', false, 'read, write, unmap, flush, all or clear'),
        str('error_type', false, 'failure, pending, corrupt_data or nomem'),
      ],
      flags: [
        flag(['-n', '--num'], 'num', 'int'),
        flag(['-q', '--queue-depth'], 'queue_depth', 'int'),
        flag(['-o', '--corrupt-offset'], 'corrupt_offset', 'int'),
        flag(['-v', '--corrupt-value'], 'corrupt_value', 'int'),
      ],
    },
  ),
  method(
    'bdev_error_resume_pending',
    byName,
    (p, ctx) => {
      resumePending(ctx.bdevs.get(p.name));
      return true;
    },
    { args: [str('name')] },
  ),
];
