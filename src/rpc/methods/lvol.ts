// Logical volumes: bdev_lvol_create_lvstore / _get_lvstores / _delete_lvstore and
// bdev_lvol_create / _get_lvols / _delete / _resize / _snapshot / _clone / _inflate /
// _decouple_parent / _set_read_only, with SPDK's params (plus "force" on resize: ours).
import type { JSONSchemaType } from 'ajv';
import { InvalidBdevError } from '../../errors.js';
import type { Server } from '../../target.js';
import type { Registrar } from '../dispatcher.js';
import { byName } from './aio.js';

type Clear = 'unmap' | 'write_zeroes' | 'none';

interface CreateLvstore { bdev_name: string; lvs_name: string; cluster_sz?: number; clear_method?: Clear; num_md_pages_per_cluster_ratio?: number; md_page_size?: number }
const createLvstore: JSONSchemaType<CreateLvstore> = {
  type: 'object',
  properties: {
    bdev_name: { type: 'string' }, lvs_name: { type: 'string' },
    cluster_sz: { type: 'integer', minimum: 0, nullable: true },
    clear_method: { type: 'string', enum: ['unmap', 'write_zeroes', 'none'], nullable: true },
    // Accepted for SPDK compatibility: our metadata slot is sized from the cluster count.
    num_md_pages_per_cluster_ratio: { type: 'integer', minimum: 0, nullable: true },
    md_page_size: { type: 'integer', minimum: 0, nullable: true },
  },
  required: ['bdev_name', 'lvs_name'],
  additionalProperties: false,
};

interface CreateLvol { lvol_name: string; size_in_mib: number; uuid?: string; lvs_name?: string; thin_provision?: boolean; clear_method?: string; lvol_uuid?: string }
const createLvol: JSONSchemaType<CreateLvol> = {
  type: 'object',
  properties: {
    lvol_name: { type: 'string' }, size_in_mib: { type: 'integer', minimum: 1 },
    uuid: { type: 'string', nullable: true }, lvs_name: { type: 'string', nullable: true },
    thin_provision: { type: 'boolean', nullable: true },
    clear_method: { type: 'string', enum: ['default', 'none', 'unmap', 'write_zeroes'], nullable: true },
    lvol_uuid: { type: 'string', nullable: true },
  },
  required: ['lvol_name', 'size_in_mib'],
  additionalProperties: false,
};

interface Which { uuid?: string; lvs_name?: string }
const which: JSONSchemaType<Which> = {
  type: 'object',
  properties: { uuid: { type: 'string', nullable: true }, lvs_name: { type: 'string', nullable: true } },
  additionalProperties: false,
};

interface Resize { name: string; size_in_mib: number; force?: boolean }
const resize: JSONSchemaType<Resize> = {
  type: 'object',
  properties: {
    name: { type: 'string' }, size_in_mib: { type: 'integer', minimum: 1 },
    // aionbd's own: shrink below what connected clients were told.
    force: { type: 'boolean', nullable: true },
  },
  required: ['name', 'size_in_mib'],
  additionalProperties: false,
};

interface Snapshot { lvol_name: string; snapshot_name: string }
const snapshot: JSONSchemaType<Snapshot> = {
  type: 'object', properties: { lvol_name: { type: 'string' }, snapshot_name: { type: 'string' } },
  required: ['lvol_name', 'snapshot_name'], additionalProperties: false,
};

interface Clone { snapshot_name: string; clone_name: string }
const clone: JSONSchemaType<Clone> = {
  type: 'object', properties: { snapshot_name: { type: 'string' }, clone_name: { type: 'string' } },
  required: ['snapshot_name', 'clone_name'], additionalProperties: false,
};

interface GetLvols { lvs_uuid?: string; lvs_name?: string }
const getLvols: JSONSchemaType<GetLvols> = {
  type: 'object', properties: { lvs_uuid: { type: 'string', nullable: true }, lvs_name: { type: 'string', nullable: true } },
  additionalProperties: false,
};

/** SPDK: exactly one of uuid and lvs_name names the lvstore. */
function oneStore(p: Which): string {
  if ((p.uuid === undefined) === (p.lvs_name === undefined)) throw new InvalidBdevError('give either uuid or lvs_name (not both)');
  return (p.uuid ?? p.lvs_name) as string;
}

export function registerLvolMethods(r: Registrar, s: Server): void {
  r.method('bdev_lvol_create_lvstore', createLvstore, (p) =>
    s.createLvstore(p.bdev_name, p.lvs_name, p.cluster_sz === undefined || p.cluster_sz === 0 ? undefined : p.cluster_sz, p.clear_method));
  r.method('bdev_lvol_get_lvstores', which, (p) => s.getLvstores({ uuid: p.uuid, lvsName: p.lvs_name }));
  r.method('bdev_lvol_delete_lvstore', which, async (p) => { await s.deleteLvstore(oneStore(p)); return true; });
  r.method('bdev_lvol_create', createLvol, (p) => s.createLvol({
    lvsName: oneStore(p), lvolName: p.lvol_name, sizeMib: p.size_in_mib, thin: p.thin_provision, uuid: p.lvol_uuid,
  }));
  r.method('bdev_lvol_delete', byName, async (p) => { await s.deleteLvol(p.name); return true; });
  r.method('bdev_lvol_resize', resize, async (p) => { await s.resizeLvol(p.name, p.size_in_mib, p.force ?? false); return true; });
  r.method('bdev_lvol_snapshot', snapshot, (p) => s.snapshotLvol(p.lvol_name, p.snapshot_name));
  r.method('bdev_lvol_clone', clone, (p) => s.cloneLvol(p.snapshot_name, p.clone_name));
  r.method('bdev_lvol_inflate', byName, async (p) => { await s.inflateLvol(p.name); return true; });
  r.method('bdev_lvol_decouple_parent', byName, async (p) => { await s.decoupleLvolParent(p.name); return true; });
  r.method('bdev_lvol_set_read_only', byName, async (p) => { await s.setLvolReadOnly(p.name); return true; });
  r.method('bdev_lvol_get_lvols', getLvols, (p) => s.getLvols({ uuid: p.lvs_uuid, lvsName: p.lvs_name }));
}
