// bdev_aio_create / bdev_aio_delete / bdev_aio_rescan, with SPDK's parameters and rpc.py's forms;
// the uring module's methods share the handlers.
import type { JSONSchemaType } from 'ajv';
import { deleteMethod, method, type ModuleContext } from '../../bdev/module.js';
import { UnsupportedError } from '../../errors.js';
import type { CallContext, MethodSpec } from '../../method.js';
import { BYTES, flag, size, str } from '../../method_form.js';
import { AIO_FILES, type FileBdevKind } from './aio.js';
import { createFile, rescanFile } from './ops.js';

/** The params of bdev_aio_create and bdev_uring_create that make the bdev. */
export interface FileCreate {
  filename: string;
  name: string;
  block_size?: number;
  readonly?: boolean;
  uuid?: string;
}

/** A create method's handler: the new bdev's name. */
export async function createFromRpc(kind: FileBdevKind, p: FileCreate, ctx: ModuleContext, call: CallContext): Promise<string> {
  // Over RPC a file must already exist (as SPDK) and lie under an --allow-path root.
  // The file is then opened beneath the root it was found under, and judged by its fd.
  const at = call.allowed !== null ? call.allowed.check(p.filename) : { filename: p.filename, root: undefined };
  const b = await createFile(ctx, kind, {
    filename: at.filename,
    within: at.root,
    name: p.name,
    blockSize: p.block_size,
    readonly: p.readonly,
    uuid: p.uuid,
  });
  return b.name;
}

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

/** bdev_<module>_rescan NAME [-f]: the file's size read again (see rescanFile). */
export function rescanMethod(name: string, kind: FileBdevKind): MethodSpec<ModuleContext> {
  return method(
    name,
    rescan,
    async (p, ctx) => {
      await rescanFile(ctx, kind, p.name, p.force ?? false);
      return true;
    },
    {
      args: [str('name')],
      flags: [flag(['-f', '--force'], 'force', 'bool', "shrink even below what connected clients were told (aionbd's own)")],
    },
  );
}

/** The positional arguments of bdev_aio_create and bdev_uring_create, as rpc.py's. */
export const FILE_CREATE_ARGS = [
  str('filename', false, 'the file or block device (never created: make it first, e.g. with truncate)', 'FILE'),
  str('name', false, "the new bdev's name"),
  size('block_size', BYTES, true, "the block size (default: the device's logical block size, or 512 for a file)"),
];

interface AioCreate extends FileCreate {
  fallocate?: boolean;
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

export const AIO_METHODS: readonly MethodSpec<ModuleContext>[] = [
  method(
    'bdev_aio_create',
    aioCreate,
    (p, ctx, call) => {
      if (p.nowait === true) throw new UnsupportedError('nowait (RWF_NOWAIT) is not supported by this AIO bdev');
      return createFromRpc(AIO_FILES, p, ctx, call);
    },
    {
      args: FILE_CREATE_ARGS,
      flags: [
        flag(['-r', '--readonly'], 'readonly', 'bool'),
        flag(['--fallocate'], 'fallocate', 'bool', 'serve UNMAP and WRITE_ZEROES with fallocate'),
        flag(['-u', '--uuid'], 'uuid'),
        flag(['--no-wait'], 'nowait', 'bool'),
      ],
    },
  ),
  deleteMethod('bdev_aio_delete', 'aio'),
  rescanMethod('bdev_aio_rescan', AIO_FILES),
];
