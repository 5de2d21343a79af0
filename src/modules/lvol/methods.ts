// Logical volumes: bdev_lvol_create_lvstore / _get_lvstores / _delete_lvstore and
// bdev_lvol_create / _get_lvols / _delete / _resize / _snapshot / _clone / _inflate /
// _decouple_parent / _set_read_only, with SPDK's params (plus "force" on resize: ours).
import type { JSONSchemaType } from 'ajv';
import { method, type ModuleContext } from '../../bdev/module.js';
import { InvalidBdevError } from '../../errors.js';
import { byName, type MethodSpec } from '../../method.js';
import { BYTES, BYTES_AS_MIB, flag, MIB, size, sizeFlag, str } from '../../method_form.js';
import { createLvol, lvstoresOf, resizeLvol } from './ops.js';

type Clear = 'unmap' | 'write_zeroes' | 'none';

interface CreateLvstore {
  bdev_name: string;
  lvs_name: string;
  cluster_sz?: number;
  clear_method?: Clear;
  num_md_pages_per_cluster_ratio?: number;
  md_page_size?: number;
}
const createLvstore: JSONSchemaType<CreateLvstore> = {
  type: 'object',
  properties: {
    bdev_name: { type: 'string' },
    lvs_name: { type: 'string' },
    cluster_sz: { type: 'integer', minimum: 0, nullable: true },
    clear_method: { type: 'string', enum: ['unmap', 'write_zeroes', 'none'], nullable: true },
    // Accepted for SPDK compatibility: our metadata slot is sized from the cluster count.
    num_md_pages_per_cluster_ratio: { type: 'integer', minimum: 0, nullable: true },
    md_page_size: { type: 'integer', minimum: 0, nullable: true },
  },
  required: ['bdev_name', 'lvs_name'],
  additionalProperties: false,
};

interface CreateLvol {
  lvol_name: string;
  size_in_mib: number;
  uuid?: string;
  lvs_name?: string;
  thin_provision?: boolean;
  clear_method?: string;
  lvol_uuid?: string;
}
const createLvolSchema: JSONSchemaType<CreateLvol> = {
  type: 'object',
  properties: {
    lvol_name: { type: 'string' },
    size_in_mib: { type: 'integer', minimum: 1 },
    uuid: { type: 'string', nullable: true },
    lvs_name: { type: 'string', nullable: true },
    thin_provision: { type: 'boolean', nullable: true },
    clear_method: { type: 'string', enum: ['default', 'none', 'unmap', 'write_zeroes'], nullable: true },
    lvol_uuid: { type: 'string', nullable: true },
  },
  required: ['lvol_name', 'size_in_mib'],
  additionalProperties: false,
};

interface Which {
  uuid?: string;
  lvs_name?: string;
}
const which: JSONSchemaType<Which> = {
  type: 'object',
  properties: { uuid: { type: 'string', nullable: true }, lvs_name: { type: 'string', nullable: true } },
  additionalProperties: false,
};

interface Resize {
  name: string;
  size_in_mib: number;
  force?: boolean;
}
const resize: JSONSchemaType<Resize> = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    size_in_mib: { type: 'integer', minimum: 1 },
    // aionbd's own: shrink below what connected clients were told.
    force: { type: 'boolean', nullable: true },
  },
  required: ['name', 'size_in_mib'],
  additionalProperties: false,
};

interface Snapshot {
  lvol_name: string;
  snapshot_name: string;
}
const snapshot: JSONSchemaType<Snapshot> = {
  type: 'object',
  properties: { lvol_name: { type: 'string' }, snapshot_name: { type: 'string' } },
  required: ['lvol_name', 'snapshot_name'],
  additionalProperties: false,
};

interface Clone {
  snapshot_name: string;
  clone_name: string;
}
const clone: JSONSchemaType<Clone> = {
  type: 'object',
  properties: { snapshot_name: { type: 'string' }, clone_name: { type: 'string' } },
  required: ['snapshot_name', 'clone_name'],
  additionalProperties: false,
};

interface GetLvols {
  lvs_uuid?: string;
  lvs_name?: string;
}
const getLvols: JSONSchemaType<GetLvols> = {
  type: 'object',
  properties: { lvs_uuid: { type: 'string', nullable: true }, lvs_name: { type: 'string', nullable: true } },
  additionalProperties: false,
};

/** SPDK: exactly one of uuid and lvs_name names the lvstore. */
function oneStore(p: Which): string {
  if ((p.uuid === undefined) === (p.lvs_name === undefined)) throw new InvalidBdevError('give either uuid or lvs_name (not both)');
  return (p.uuid ?? p.lvs_name) as string;
}

const storeFlags = [flag(['-u', '--uuid'], 'uuid'), flag(['-l', '--lvs-name'], 'lvs_name')];
const byNameForm = { args: [str('name')] };

export const LVOL_METHODS: readonly MethodSpec<ModuleContext>[] = [
  method(
    'bdev_lvol_create_lvstore',
    createLvstore,
    (p, ctx) =>
      lvstoresOf(ctx).create(
        p.bdev_name,
        p.lvs_name,
        p.cluster_sz === undefined || p.cluster_sz === 0 ? undefined : p.cluster_sz,
        p.clear_method,
      ),
    {
      args: [str('bdev_name'), str('lvs_name')],
      flags: [
        sizeFlag(['-c', '--cluster-sz'], 'cluster_sz', BYTES, 'the cluster size (default 4M)', 'BYTES'),
        flag(['--clear-method'], 'clear_method'),
        flag(['-m', '--md-pages-per-cluster-ratio'], 'num_md_pages_per_cluster_ratio', 'int'),
      ],
    },
  ),
  method('bdev_lvol_get_lvstores', which, (p, ctx) => lvstoresOf(ctx).list({ uuid: p.uuid, lvsName: p.lvs_name }), { flags: storeFlags }),
  method(
    'bdev_lvol_delete_lvstore',
    which,
    async (p, ctx) => {
      await lvstoresOf(ctx).deleteStore(oneStore(p));
      return true;
    },
    { flags: storeFlags },
  ),
  // Today's rpc.py: NAME MIB (-l LVS | -u UUID). The older form -n NAME -s BYTES works beside it.
  method(
    'bdev_lvol_create',
    createLvolSchema,
    (p, ctx) =>
      createLvol(ctx, {
        lvsName: oneStore(p),
        lvolName: p.lvol_name,
        sizeMib: p.size_in_mib,
        thin: p.thin_provision,
        uuid: p.lvol_uuid,
      }),
    {
      args: [
        str('lvol_name', true, "the lvol's name", 'NAME'),
        size('size_in_mib', MIB, true, "its size, as today's rpc.py takes it", 'MIB'),
      ],
      flags: [
        flag(['-l', '--lvs-name'], 'lvs_name', 'string', 'the lvstore, by name', 'LVS'),
        flag(['-u', '--uuid'], 'uuid', 'string', 'the lvstore, by UUID'),
        flag(['-t', '--thin-provision'], 'thin_provision', 'bool', 'allocate clusters on first write'),
        flag(['-c', '--clear-method'], 'clear_method'),
        flag(['-n', '--lvol-name'], 'lvol_name', 'string', "the lvol's name, in place of NAME", 'NAME'),
        sizeFlag(
          ['-s', '--size'],
          'size_in_mib',
          BYTES_AS_MIB,
          'its size, as the older rpc.py took it, rounded up to a whole MiB',
          'BYTES',
        ),
        sizeFlag(['--size-in-mib'], 'size_in_mib', MIB, 'its size, in place of MIB', 'MIB'),
      ],
      needs: { lvol_name: 'NAME or -n NAME', size_in_mib: 'MIB, -s BYTES or --size-in-mib MIB' },
      usage: [
        'bdev_lvol_create NAME MIB (-l LVS | -u UUID) [-t] [-c CLEAR_METHOD]',
        'bdev_lvol_create (-l LVS | -u UUID) -n NAME -s BYTES [-t] [-c CLEAR_METHOD]',
      ],
      note:
        "The positional size is in MiB, as today's rpc.py takes it; -s is in bytes, as the older rpc.py took it " +
        '(-s 1073741824 is 1 GiB). With a unit (512M, 1G, 2T) either one means what it says.',
    },
  ),
  method(
    'bdev_lvol_delete',
    byName,
    async (p, ctx) => {
      await lvstoresOf(ctx).deleteLvol(p.name);
      return true;
    },
    byNameForm,
  ),
  method(
    'bdev_lvol_resize',
    resize,
    async (p, ctx) => {
      await resizeLvol(ctx, p.name, p.size_in_mib, p.force ?? false);
      return true;
    },
    {
      args: [str('name'), size('size_in_mib', MIB, false, 'the new size', 'MIB')],
      flags: [flag(['-f', '--force'], 'force', 'bool', "shrink even below what connected clients were told (aionbd's own)")],
    },
  ),
  // Snapshots and clones: rpc.py's positional forms.
  method('bdev_lvol_snapshot', snapshot, (p, ctx) => lvstoresOf(ctx).snapshot(p.lvol_name, p.snapshot_name), {
    args: [str('lvol_name', false, 'the lvol (UUID or LVS/NAME)'), str('snapshot_name', false, "the new snapshot's name")],
  }),
  method('bdev_lvol_clone', clone, (p, ctx) => lvstoresOf(ctx).clone(p.snapshot_name, p.clone_name), {
    args: [
      str('snapshot_name', false, 'the snapshot or read-only lvol (UUID or LVS/NAME)'),
      str('clone_name', false, "the new lvol's name"),
    ],
  }),
  method(
    'bdev_lvol_inflate',
    byName,
    async (p, ctx) => {
      await lvstoresOf(ctx).inflate(p.name);
      return true;
    },
    byNameForm,
  ),
  method(
    'bdev_lvol_decouple_parent',
    byName,
    async (p, ctx) => {
      await lvstoresOf(ctx).decoupleParent(p.name);
      return true;
    },
    byNameForm,
  ),
  method(
    'bdev_lvol_set_read_only',
    byName,
    async (p, ctx) => {
      await lvstoresOf(ctx).setReadOnly(p.name);
      return true;
    },
    byNameForm,
  ),
  method('bdev_lvol_get_lvols', getLvols, (p, ctx) => lvstoresOf(ctx).lvols({ uuid: p.lvs_uuid, lvsName: p.lvs_name }), {
    flags: [flag(['-u', '--lvs-uuid'], 'lvs_uuid'), flag(['-l', '--lvs-name'], 'lvs_name')],
  }),
];
