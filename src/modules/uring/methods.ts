// bdev_uring_create / bdev_uring_delete / bdev_uring_rescan, with SPDK's parameters and rpc.py's forms.
import type { JSONSchemaType } from 'ajv';
import { deleteMethod, method, type ModuleContext } from '../../bdev/module.js';
import type { MethodSpec } from '../../method.js';
import { BYTES, flag, size, str } from '../../method_form.js';
import { createUring, rescanUring } from './ops.js';

interface UringCreate {
  filename: string;
  name: string;
  block_size?: number;
  uuid?: string;
  readonly?: boolean;
}
const uringCreate: JSONSchemaType<UringCreate> = {
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

export const URING_METHODS: readonly MethodSpec<ModuleContext>[] = [
  method(
    'bdev_uring_create',
    uringCreate,
    async (p, ctx, call) => {
      // Over RPC a file must already exist (as SPDK) and lie under an --allow-path root, and is
      // opened beneath the root it was found under, judged by its fd.
      const at = call.allowed !== null ? call.allowed.check(p.filename) : { filename: p.filename, root: undefined };
      const b = await createUring(ctx, {
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
      flags: [flag(['-u', '--uuid'], 'uuid'), flag(['-r', '--readonly'], 'readonly', 'bool')],
    },
  ),
  deleteMethod('bdev_uring_delete', 'uring'),
  method(
    'bdev_uring_rescan',
    rescan,
    async (p, ctx) => {
      await rescanUring(ctx, p.name, p.force ?? false);
      return true;
    },
    {
      args: [str('name')],
      flags: [flag(['-f', '--force'], 'force', 'bool', "shrink even below what connected clients were told (aionbd's own)")],
    },
  ),
];
