// bdev_rbd_register_cluster / _unregister_cluster / _get_clusters_info, bdev_rbd_create /
// _delete / _resize, with SPDK's parameters.
import path from 'node:path';
import type { JSONSchemaType } from 'ajv';
import type { Server } from '../../target.js';
import type { CallContext, Registrar } from '../dispatcher.js';
import { byName } from './aio.js';

type StringMap = Record<string, string>;
const stringMap = { type: 'object', required: [], additionalProperties: { type: 'string' }, nullable: true } as const;

interface RegisterCluster { name: string; user_id?: string; config_param?: StringMap; config_file?: string; key_file?: string; core_mask?: string }
const registerCluster: JSONSchemaType<RegisterCluster> = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    user_id: { type: 'string', nullable: true },
    config_param: stringMap,
    config_file: { type: 'string', nullable: true },
    key_file: { type: 'string', nullable: true },
    // SPDK pins librados's threads to these cores; ours run where the kernel puts them.
    core_mask: { type: 'string', nullable: true },
  },
  required: ['name'],
  additionalProperties: false,
};

interface ClusterQuery { name?: string }
const clusterQuery: JSONSchemaType<ClusterQuery> = {
  type: 'object', properties: { name: { type: 'string', nullable: true } }, required: [], additionalProperties: false,
};

interface RbdCreate {
  name?: string; user_id?: string; pool_name: string; rbd_name: string; block_size: number; config?: StringMap;
  cluster_name?: string; uuid?: string; read_only?: boolean;
}
const rbdCreate: JSONSchemaType<RbdCreate> = {
  type: 'object',
  properties: {
    name: { type: 'string', nullable: true },
    user_id: { type: 'string', nullable: true },
    pool_name: { type: 'string', minLength: 1 },
    rbd_name: { type: 'string', minLength: 1 },
    block_size: { type: 'integer', minimum: 0, maximum: 2 ** 32 - 1 },
    config: stringMap,
    cluster_name: { type: 'string', nullable: true },
    uuid: { type: 'string', nullable: true },
    read_only: { type: 'boolean', nullable: true },
  },
  required: ['pool_name', 'rbd_name', 'block_size'],
  additionalProperties: false,
};

interface RbdResize { name: string; new_size: number }
const rbdResize: JSONSchemaType<RbdResize> = {
  type: 'object',
  properties: { name: { type: 'string' }, new_size: { type: 'integer', minimum: 1 } },
  required: ['name', 'new_size'],
  additionalProperties: false,
};

/** Files librados reads for a caller over RPC lie under --allow-path, as every other path does. */
function allowed(ctx: CallContext, file: string | undefined): string | undefined {
  return file === undefined || ctx.allowed === null ? file : ctx.allowed.check(file).filename;
}

/**
 * Ceph options naming files: ones librados reads, directories it writes into, and files it
 * creates. Over RPC they are held to --allow-path like bdev_aio_create's file ("" turns the
 * last kind off and needs no check); Ceph's $variables cannot be resolved here, so such a
 * path is refused.
 */
const READS = new Set(['keyring', 'keyfile']);
const DIRS = new Set(['run_dir', 'log_dir']);
const CREATES = new Set(['log_file', 'admin_socket']);

function checkedOptions(ctx: CallContext, opts: StringMap | undefined): StringMap | undefined {
  const a = ctx.allowed;
  if (opts === undefined || a === null) return opts;
  const out: StringMap = {};
  for (const [k, v] of Object.entries(opts)) {
    const key = k.replace(/[ -]/g, '_');
    if (READS.has(key) || DIRS.has(key)) out[k] = a.check(v).filename;
    else if (CREATES.has(key) && v !== '') out[k] = path.join(a.check(path.dirname(v)).filename, path.basename(v));
    else out[k] = v;
  }
  return out;
}

export function registerRbdMethods(r: Registrar, s: Server): void {
  r.method('bdev_rbd_register_cluster', registerCluster, (p, ctx) => s.rbdClusters.register(p.name, {
    userId: p.user_id, config: checkedOptions(ctx, p.config_param), configFile: allowed(ctx, p.config_file), keyFile: allowed(ctx, p.key_file),
  }));
  r.method('bdev_rbd_unregister_cluster', byName, async (p) => { await s.rbdClusters.unregister(p.name); return true; });
  r.method('bdev_rbd_get_clusters_info', clusterQuery, (p) => s.rbdClusters.info(p.name));
  r.method('bdev_rbd_create', rbdCreate, async (p, ctx) => {
    const b = await s.createRbd({
      name: p.name, pool: p.pool_name, image: p.rbd_name, blockSize: p.block_size, clusterName: p.cluster_name,
      userId: p.user_id, config: checkedOptions(ctx, p.config), uuid: p.uuid, readonly: p.read_only,
    });
    return b.name;
  });
  r.method('bdev_rbd_delete', byName, async (p) => { await s.deleteBdev(p.name, 'rbd'); return true; });
  r.method('bdev_rbd_resize', rbdResize, async (p) => { await s.resizeRbd(p.name, p.new_size); return true; });
}
