// --rbd POOL/IMAGE[,conf=FILE][,id=USER][,keyfile=FILE][,name=N][,bs=B][,readonly][,timeout=SEC][,description=D]
// Images that reach the cluster the same way (conf, id, keyfile, timeout) share one registered
// cluster, so one connection serves them all.
import { checkName } from '../bdev/names.js';
import type { Server } from '../server.js';
import { nameFrom, specBlockSize, splitSpec } from './spec.js';

export interface RbdSpec {
  pool: string;
  image: string;
  name: string;
  blockSize: number;
  readonly: boolean;
  conf: string | undefined;
  id: string | undefined;
  keyFile: string | undefined;
  /** Seconds for rados_osd_op_timeout, rados_mon_op_timeout and client_mount_timeout. */
  timeout: number | undefined;
  description: string | undefined;
}

const FORM = '--rbd POOL/IMAGE[,conf=FILE][,id=USER][,keyfile=FILE][,name=N][,bs=B][,readonly][,timeout=SEC][,description=D]';

export function parseRbdSpec(spec: string): RbdSpec {
  const s = splitSpec('--rbd', spec);
  const where = s.first;
  const slash = where.indexOf('/');
  if (slash <= 0 || slash === where.length - 1 || where.indexOf('/', slash + 1) >= 0)
    throw s.bad(`the pool and image come first, as POOL/IMAGE (${FORM})`);
  const image = where.slice(slash + 1);
  const out: RbdSpec = {
    pool: where.slice(0, slash),
    image,
    name: nameFrom(image, 'rbd0'),
    blockSize: 512,
    readonly: false,
    conf: undefined,
    id: undefined,
    keyFile: undefined,
    timeout: undefined,
    description: undefined,
  };
  for (const k of s.keys) {
    switch (k.key) {
      case 'conf':
        out.conf = k.need();
        break;
      case 'id':
        out.id = k.need();
        break;
      case 'keyfile':
        out.keyFile = k.need();
        break;
      case 'name':
        out.name = checkName(k.need());
        break;
      case 'description':
      case 'desc':
        out.description = k.need();
        break;
      case 'readonly':
      case 'ro':
        out.readonly = true;
        break;
      case 'bs':
      case 'block_size':
        out.blockSize = specBlockSize(s, k.need());
        break;
      case 'timeout': {
        const n = Number(k.need());
        if (!Number.isInteger(n) || n < 1 || n > 3600) throw s.bad('timeout is whole seconds from 1 to 3600');
        out.timeout = n;
        break;
      }
      default:
        throw s.bad(`unknown key "${k.key}" (known: conf, id, keyfile, name, bs, readonly, timeout, description)`);
    }
  }
  return out;
}

/** Registers one cluster per distinct way of reaching one, then opens and exports each image. */
export async function startRbdSpecs(server: Server, specs: RbdSpec[]): Promise<void> {
  const clusters = new Map<string, string>();
  for (const s of specs) {
    const key = JSON.stringify([s.conf, s.id, s.keyFile, s.timeout]);
    let cluster = clusters.get(key);
    if (cluster === undefined) {
      // The first free name: a --config may have registered clusters already.
      for (let i = 0; cluster === undefined || server.rbdClusters.has(cluster); i++) cluster = `cluster${i}`;
      const t = s.timeout === undefined ? undefined : String(s.timeout);
      await server.rbdClusters.register(cluster, {
        userId: s.id,
        configFile: s.conf,
        keyFile: s.keyFile,
        config: t === undefined ? undefined : { rados_osd_op_timeout: t, rados_mon_op_timeout: t, client_mount_timeout: t },
      });
      clusters.set(key, cluster);
    }
    await server.createRbd({
      name: s.name,
      pool: s.pool,
      image: s.image,
      blockSize: s.blockSize,
      readonly: s.readonly,
      clusterName: cluster,
    });
    server.addExport(s.name, { readonly: s.readonly, description: s.description });
  }
}
