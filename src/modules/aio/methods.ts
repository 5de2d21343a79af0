// bdev_aio_create / bdev_aio_delete / bdev_aio_rescan, with SPDK's parameters and rpc.py's forms.
import type { JSONSchemaType } from 'ajv';
import { deleteMethod, method, type ModuleContext } from '../../bdev/module.js';
import { UnsupportedError } from '../../errors.js';
import type { MethodSpec } from '../../method.js';
import { BYTES, flag, size, str } from '../../method_form.js';
import { createAio, rescanAio } from './ops.js';

interface AioCreate {
  filename: string;
  name: string;
  block_size?: number;
  readonly?: boolean;
  fallocate?: boolean;
  uuid?: string;
  nowait?: boolean;
}
const aioCreate: JSONSchemaType<AioCreate> = {
  type: 'object',
  properties: {
    filename: { type: 'string', minLength: 1 },
    name: { type: 'string' },
    block_size: { type: 'integer', minimum: 0, maximum: 2 ** 32 - 1, nullable: true },
    readonly: { type: 'boolean', nullable: true },
    // Accepted for SPDK compatibility: our AIO bdev always has UNMAP and WRITE_ZEROES.
    fallocate: { type: 'boolean', nullable: true },
    uuid: { type: 'string', nullable: true },
    nowait: { type: 'boolean', nullable: true },
  },
  required: ['filename', 'name'],
  additionalProperties: false,
};

interface Rescan {
  name: string;
  force?: boolean;
}
const rescan: JSONSchemaType<Rescan> = {
  type: 'object',
  // force is aionbd's own: shrink below what connected clients were told.
  properties: { name: { type: 'string' }, force: { type: 'boolean', nullable: true } },
  required: ['name'],
  additionalProperties: false,
};

export const AIO_METHODS: readonly MethodSpec<ModuleContext>[] = [
  method(
    'bdev_aio_create',
    aioCreate,
    async (p, ctx, call) => {
      if (p.nowait === true) throw new UnsupportedError('nowait (RWF_NOWAIT) is not supported by this AIO bdev');
      // Over RPC a file must already exist (as SPDK) and lie under an --allow-path root.
      // The file is then opened beneath the root it was found under, and judged by its fd.
      const at = call.allowed !== null ? call.allowed.check(p.filename) : { filename: p.filename, root: undefined };
      const b = await createAio(ctx, {
        filename: at.filename,
        within: at.root,
        name: p.name,
        blockSize: p.block_size,
        readonly: p.readonly,
        uuid: p.uuid,
      });
      return b.name;
    },
    {
      args: [
        str('filename', false, 'the file or block device (never created: make it first, e.g. with truncate)', 'FILE'),
        str('name', false, "the new bdev's name"),
        size('block_size', BYTES, true, "the block size (default: the device's logical block size, or 512 for a file)"),
      ],
      flags: [
        flag(['-r', '--readonly'], 'readonly', 'bool'),
        flag(['--fallocate'], 'fallocate', 'bool', 'serve UNMAP and WRITE_ZEROES with fallocate'),
        flag(['-u', '--uuid'], 'uuid'),
        flag(['--no-wait'], 'nowait', 'bool'),
      ],
    },
  ),
  deleteMethod('bdev_aio_delete', 'aio'),
  method(
    'bdev_aio_rescan',
    rescan,
    async (p, ctx) => {
      await rescanAio(ctx, p.name, p.force ?? false);
      return true;
    },
    {
      args: [str('name')],
      flags: [flag(['-f', '--force'], 'force', 'bool', "shrink even below what connected clients were told (aionbd's own)")],
    },
  ),
];
