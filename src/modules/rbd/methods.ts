// bdev_rbd_register_cluster / _unregister_cluster / _get_clusters_info, bdev_rbd_create /
// _delete / _resize, with SPDK's parameters and rpc.py's forms.
import path from 'node:path';
import type { JSONSchemaType } from 'ajv';
import { deleteMethod, method, type ModuleContext } from '../../bdev/module.js';
import { byName, type CallContext, type MethodSpec } from '../../method.js';
import { BYTES, flag, MIB, size, str } from '../../method_form.js';
import { createRbd, rbdClustersOf, resizeRbd } from './ops.js';

type StringMap = Record<string, string>;
const stringMap = { type: 'object', required: [], additionalProperties: { type: 'string' }, nullable: true } as const;

interface RegisterCluster {
  name: string;
  user_id?: string;
  config_param?: StringMap;
  config_file?: string;
  key_file?: string;
  core_mask?: string;
}
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

interface ClusterQuery {
  name?: string;
}
const clusterQuery: JSONSchemaType<ClusterQuery> = {
  type: 'object',
  properties: { name: { type: 'string', nullable: true } },
  required: [],
  additionalProperties: false,
};

interface RbdCreate {
  name?: string;
  user_id?: string;
  pool_name: string;
  rbd_name: string;
  block_size: number;
  config?: StringMap;
  cluster_name?: string;
  uuid?: string;
  read_only?: boolean;
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

interface RbdResize {
  name: string;
  new_size: number;
}
const rbdResize: JSONSchemaType<RbdResize> = {
  type: 'object',
  properties: { name: { type: 'string' }, new_size: { type: 'integer', minimum: 1 } },
  required: ['name', 'new_size'],
  additionalProperties: false,
};

/** Files librados reads for a caller over RPC lie under --allow-path, as every other path does. */
function allowed(call: CallContext, file: string | undefined): string | undefined {
  return file === undefined || call.allowed === null ? file : call.allowed.check(file).filename;
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

function checkedOptions(call: CallContext, opts: StringMap | undefined): StringMap | undefined {
  const a = call.allowed;
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

export const RBD_METHODS: readonly MethodSpec<ModuleContext>[] = [
  method(
    'bdev_rbd_register_cluster',
    registerCluster,
    (p, ctx, call) =>
      rbdClustersOf(ctx).register(p.name, {
        userId: p.user_id,
        config: checkedOptions(call, p.config_param),
        configFile: allowed(call, p.config_file),
        keyFile: allowed(call, p.key_file),
      }),
    {
      args: [str('name', false, "the cluster's name, for bdev_rbd_create -c")],
      flags: [
        flag(['--user-id'], 'user_id', 'string', 'the Ceph client (default: admin)'),
        flag(
          ['--config-param'],
          'config_param',
          'kv',
          'a Ceph option, repeatable (mon_host=127.0.0.1, rados_osd_op_timeout=10)',
          'KEY=VALUE',
        ),
        flag(['--config-file'], 'config_file', 'string', 'a ceph.conf', 'FILE'),
        flag(['--key-file'], 'key_file', 'string', "the client's key", 'FILE'),
        flag(['--core-mask'], 'core_mask', 'string', 'accepted for SPDK; not used'),
      ],
    },
  ),
  method(
    'bdev_rbd_unregister_cluster',
    byName,
    async (p, ctx) => {
      await rbdClustersOf(ctx).unregister(p.name);
      return true;
    },
    { args: [str('name')] },
  ),
  method('bdev_rbd_get_clusters_info', clusterQuery, (p, ctx) => rbdClustersOf(ctx).info(p.name), {
    flags: [flag(['-b', '--name'], 'name', 'string', 'only this cluster')],
  }),
  method(
    'bdev_rbd_create',
    rbdCreate,
    async (p, ctx, call) => {
      const b = await createRbd(ctx, {
        name: p.name,
        pool: p.pool_name,
        image: p.rbd_name,
        blockSize: p.block_size,
        clusterName: p.cluster_name,
        userId: p.user_id,
        config: checkedOptions(call, p.config),
        uuid: p.uuid,
        readonly: p.read_only,
      });
      return b.name;
    },
    {
      args: [
        str('pool_name', false, 'the pool', 'POOL'),
        str('rbd_name', false, 'the image', 'IMAGE'),
        size('block_size', BYTES, false, "the bdev's block size"),
      ],
      flags: [
        flag(['-b', '--name'], 'name', 'string', "the bdev's name (default Ceph0, Ceph1, ...)"),
        flag(['-c', '--cluster-name'], 'cluster_name', 'string', 'a registered cluster'),
        flag(['--user-id'], 'user_id', 'string', "the Ceph client of a connection of the bdev's own"),
        flag(['--config'], 'config', 'kv', 'a Ceph option of that connection, repeatable', 'KEY=VALUE'),
        flag(['-u', '--uuid'], 'uuid'),
        flag(['-r', '--read-only'], 'read_only', 'bool'),
      ],
    },
  ),
  deleteMethod('bdev_rbd_delete', 'rbd'),
  method(
    'bdev_rbd_resize',
    rbdResize,
    async (p, ctx) => {
      await resizeRbd(ctx, p.name, p.new_size);
      return true;
    },
    {
      args: [str('name'), size('new_size', MIB, false, 'the new size (it only grows)', 'MIB')],
    },
  ),
];
