// bdev_uring_create / bdev_uring_delete / bdev_uring_rescan, with SPDK's parameters and rpc.py's
// forms; the handlers are the AIO module's, over the io_uring kind.
import type { JSONSchemaType } from 'ajv';
import { deleteMethod, method, type ModuleContext } from '../../bdev/module.js';
import type { MethodSpec } from '../../method.js';
import { flag } from '../../method_form.js';
import { createFromRpc, FILE_CREATE_ARGS, rescanMethod, type FileCreate } from '../aio/methods.js';
import { URING_FILES } from './engine.js';

const uringCreate: JSONSchemaType<FileCreate> = {
  type: 'object',
  properties: {
    filename: { type: 'string', minLength: 1 },
    name: { type: 'string' },
    block_size: { type: 'integer', minimum: 0, maximum: 2 ** 32 - 1, nullable: true },
    uuid: { type: 'string', nullable: true },
    // aionbd's own, as for bdev_aio_create: save_config keeps a read-only bdev read-only.
    readonly: { type: 'boolean', nullable: true },
  },
  required: ['filename', 'name'],
  additionalProperties: false,
};

export const URING_METHODS: readonly MethodSpec<ModuleContext>[] = [
  method('bdev_uring_create', uringCreate, (p, ctx, call) => createFromRpc(URING_FILES, p, ctx, call), {
    args: FILE_CREATE_ARGS,
    flags: [flag(['-u', '--uuid'], 'uuid'), flag(['-r', '--readonly'], 'readonly', 'bool')],
  }),
  deleteMethod('bdev_uring_delete', 'uring'),
  rescanMethod('bdev_uring_rescan', URING_FILES),
];
