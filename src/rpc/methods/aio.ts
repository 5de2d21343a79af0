// bdev_aio_create / bdev_aio_delete / bdev_aio_rescan, with SPDK's parameters.
import type { JSONSchemaType } from 'ajv';
import { UnsupportedError } from '../../errors.js';
import type { Server } from '../../target.js';
import type { Registrar } from '../dispatcher.js';

interface AioCreate { filename: string; name: string; block_size?: number; readonly?: boolean; fallocate?: boolean; uuid?: string; nowait?: boolean }
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

interface ByName { name: string }
export const byName: JSONSchemaType<ByName> = {
  type: 'object', properties: { name: { type: 'string' } }, required: ['name'], additionalProperties: false,
};

interface Rescan { name: string; force?: boolean }
const rescan: JSONSchemaType<Rescan> = {
  type: 'object',
  // force is aionbd's own: shrink below what connected clients were told.
  properties: { name: { type: 'string' }, force: { type: 'boolean', nullable: true } },
  required: ['name'],
  additionalProperties: false,
};

export function registerAioMethods(r: Registrar, s: Server): void {
  r.method('bdev_aio_create', aioCreate, async (p, ctx) => {
    if (p.nowait === true) throw new UnsupportedError('nowait (RWF_NOWAIT) is not supported by this AIO bdev');
    // Over RPC a file must already exist (as SPDK) and lie under an --allow-path root.
    // The file is then opened beneath the root it was found under, and judged by its fd.
    const at = ctx.allowed !== null ? ctx.allowed.check(p.filename) : { filename: p.filename, root: undefined };
    const b = await s.createAio({ filename: at.filename, within: at.root, name: p.name, blockSize: p.block_size, readonly: p.readonly, uuid: p.uuid });
    return b.name;
  });
  r.method('bdev_aio_delete', byName, async (p) => { await s.deleteBdev(p.name, 'aio'); return true; });
  r.method('bdev_aio_rescan', rescan, async (p) => { await s.rescanAio(p.name, p.force ?? false); return true; });
}
