// Connections to Ceph clusters. A registered cluster (bdev_rbd_register_cluster) is one
// connection (one rados_t: its monitor session, OSD sessions and threads) shared by every image
// opened through it; a bdev made without a cluster name has a connection of its own, as in SPDK.
import { constants } from 'node:os';
import { AionbdError } from '../../errors.js';
import { native } from '../../native.js';
import { checkName } from '../../bdev/names.js';
import type { ConfigEntry } from '../../bdev/types.js';
import { RbdClusterExistsError, RbdClusterInUseError, RbdClusterNotFoundError, RbdError, RbdUnavailableError } from './errors.js';
import type { RbdCallback, RbdClusterHandle, RbdNative } from '../../native_rbd.js';

const E = constants.errno;

/** How to reach a cluster: SPDK's user_id, config_param (or config), config_file and key_file. */
export interface RbdConnectParams {
  /** The Ceph client name without "client." (default: admin). */
  userId?: string | undefined;
  /** Options set on the connection (rados_conf_set) after the file: they win. */
  config?: Record<string, string> | undefined;
  /** A ceph.conf. Without it and without `config`, Ceph's default search path is read. */
  configFile?: string | undefined;
  /** A file holding the client's key (cephx). */
  keyFile?: string | undefined;
}

/**
 * What aionbd sets where the configuration leaves Ceph's own default: [option, ours, Ceph's].
 * Without the timeouts a stopped OSD or monitor stalls I/O (and a connect) for minutes or for
 * ever; with them a request fails with EIO. librbd's cache is off, as `qemu -drive cache=none`
 * has it: a write completes when the OSDs have it, and FLUSH has nothing to push. One librados
 * completion thread instead of two: every request librbd queues wakes an idle one, and with two
 * they took turns waking (a futex call per request on each); with one, the server's CPU per 4k
 * read fell by about a sixth and its IOPS rose by about 8% (docs/performance.notes.md, "RBD").
 */
export const RBD_DEFAULTS: readonly (readonly [string, string, string])[] = [
  ['rados_osd_op_timeout', '30', '0'],
  ['rados_mon_op_timeout', '30', '0'],
  ['client_mount_timeout', '30', '300'],
  ['rbd_cache', 'false', 'true'],
  ['librados_thread_count', '1', '2'],
];

type AvailableRbd = Extract<RbdNative, { available: true }>;

/** The addon's RBD classes, or RbdUnavailableError naming the package to install. */
export function rbdNative(): AvailableRbd {
  const r = native().rbd;
  if (!r.available) throw new RbdUnavailableError(r.reason);
  return r;
}

type NativeError = Parameters<RbdCallback<unknown>>[0];

/** An addon failure as a typed error: `what` says what was being done. */
export function rbdError(err: NonNullable<NativeError> | unknown, what: string): AionbdError {
  if (err instanceof AionbdError) return err;
  const e = err as NonNullable<NativeError>;
  if (e.code === 'ENOLIBRBD') return new RbdUnavailableError(e.message, { cause: e });
  const errno = typeof e.errno === 'number' && e.errno < 0 ? -e.errno : E.EIO;
  return new RbdError(`${what}: ${e.message}`, errno, { cause: e });
}

/** A callback-style addon call as a promise that rejects with a typed error. */
export function rbdCall<T>(what: string, start: (cb: RbdCallback<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    start((err, value) => {
      if (err !== null) reject(rbdError(err, what));
      else resolve(value as T);
    });
  });
}

/** One connection to a cluster. */
export class RbdConnection {
  #closing: Promise<void> | null = null;

  private constructor(
    readonly handle: RbdClusterHandle,
    readonly params: RbdConnectParams,
  ) {}

  /** Connects; bounded by client_mount_timeout (30 s unless configured). */
  static async open(p: RbdConnectParams): Promise<RbdConnection> {
    const n = rbdNative();
    let h: RbdClusterHandle;
    try {
      h = new n.RbdCluster();
    } catch (err) {
      throw rbdError(err, 'cannot use librbd');
    }
    const config = Object.entries(p.config ?? {});
    const readDefaultConf = p.configFile === undefined && config.length === 0;
    const hint = readDefaultConf ? ' (give a config file, or mon_host in the config)' : '';
    await rbdCall<undefined>(`cannot connect to the Ceph cluster${hint}`, (cb) =>
      h.connect(
        {
          ...(p.userId !== undefined ? { userId: p.userId } : {}),
          ...(p.configFile !== undefined ? { confFile: p.configFile } : {}),
          ...(p.keyFile !== undefined ? { keyFile: p.keyFile } : {}),
          readDefaultConf,
          defaults: RBD_DEFAULTS.map(([k, v, d]) => [k, v, d]),
          params: config,
        },
        cb,
      ),
    );
    return new RbdConnection(h, p);
  }

  get fsid(): string | null {
    return this.handle.fsid();
  }

  /** Shuts the connection down; only after every image on it closed. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= rbdCall<undefined>('rados_shutdown', (cb) => {
      this.handle.shutdown(cb);
    });
    return this.#closing;
  }
}

/** A registered cluster as bdev_rbd_get_clusters_info shows it (SPDK's keys). */
export interface RbdClusterInfo {
  cluster_name: string;
  user_id?: string;
  config_param?: Record<string, string>;
  config_file?: string;
  key_file?: string;
}

interface Registered {
  params: RbdConnectParams;
  conn: RbdConnection;
  users: Set<string>;
}

/** The registered clusters of one server, by name. */
export class RbdClusters {
  readonly #byName = new Map<string, Registered>();
  /** Names being connected: a second register of the same name is refused at once. */
  readonly #connecting = new Set<string>();

  /** bdev_rbd_register_cluster: connects now, so that a bad configuration fails here. */
  async register(name: string, p: RbdConnectParams): Promise<string> {
    checkName(name, 'cluster name');
    if (this.#byName.has(name) || this.#connecting.has(name)) throw new RbdClusterExistsError(name);
    this.#connecting.add(name);
    try {
      const conn = await RbdConnection.open(p);
      this.#byName.set(name, { params: p, conn, users: new Set() });
      return name;
    } finally {
      this.#connecting.delete(name);
    }
  }

  has(name: string): boolean {
    return this.#byName.has(name) || this.#connecting.has(name);
  }

  /** bdev_rbd_unregister_cluster: refused while a bdev uses it. */
  async unregister(name: string): Promise<void> {
    const c = this.#get(name);
    if (c.users.size > 0) throw new RbdClusterInUseError(name, [...c.users]);
    this.#byName.delete(name);
    await c.conn.close();
  }

  /** The connection of `name`, now used by `bdev` (until release()). */
  use(name: string, bdev: string): RbdConnection {
    const c = this.#get(name);
    c.users.add(bdev);
    return c.conn;
  }

  release(name: string, bdev: string): void {
    this.#byName.get(name)?.users.delete(bdev);
  }

  /** bdev_rbd_get_clusters_info: one cluster's, or all of them. */
  info(name?: string): RbdClusterInfo | RbdClusterInfo[] {
    if (name !== undefined) return describe(name, this.#get(name).params);
    return [...this.#byName].map(([n, c]) => describe(n, c.params));
  }

  /** save_config: one bdev_rbd_register_cluster per cluster, to come before the bdevs. */
  configEntries(): ConfigEntry[] {
    return [...this.#byName].map(([n, c]) => {
      const { cluster_name, ...rest } = describe(n, c.params);
      return { method: 'bdev_rbd_register_cluster', params: { name: cluster_name, ...rest } };
    });
  }

  /** After every bdev closed: shuts down every connection. */
  async closeAll(): Promise<void> {
    const all = [...this.#byName.values()];
    this.#byName.clear();
    await Promise.all(all.map((c) => c.conn.close()));
  }

  #get(name: string): Registered {
    const c = this.#byName.get(name);
    if (c === undefined) throw new RbdClusterNotFoundError(name);
    return c;
  }
}

function describe(name: string, p: RbdConnectParams): RbdClusterInfo {
  return {
    cluster_name: name,
    ...(p.userId !== undefined ? { user_id: p.userId } : {}),
    ...(p.config !== undefined ? { config_param: { ...p.config } } : {}),
    ...(p.configFile !== undefined ? { config_file: p.configFile } : {}),
    ...(p.keyFile !== undefined ? { key_file: p.keyFile } : {}),
  };
}
