// rpc.py's command-line forms for the methods it knows, as data: positional arguments and flags,
// the JSON param each one fills, and the help `aionbd rpc METHOD --help` prints. Parsing is in
// rpc_args.ts, the help text in rpc_help.ts.
import { UsageError } from '../errors.js';

/** kv: KEY=VALUE, repeatable; each use adds one key to an object param. */
export type Kind = 'string' | 'int' | 'bool' | 'list' | 'csv' | 'size' | 'kv';

/**
 * How a size is read: a bare number counts `bare` bytes each; a number with a unit (512K, 256M,
 * 1G) is bytes. The param is sent as a count of `sent` bytes; a size that is not a whole count
 * is refused, or rounded up where `roundUp` says so.
 */
export interface SizeUnit { bare: number; sent: number; roundUp?: boolean }

export interface Arg {
  key: string;
  kind: Kind;
  optional?: boolean;
  /** For kind 'size'. */
  unit?: SizeUnit;
  /** The placeholder in usage lines (default: the key in capitals). */
  meta?: string;
  help?: string;
  /** What --help names as its JSON param, when that is not `key` (a value the form computes). */
  json?: string;
}
export interface Flag extends Arg { names: string[] }
export interface Form {
  args?: Arg[];
  flags?: Flag[];
  /** Params that must be there once positionals and flags are read, with how to give each. */
  needs?: Record<string, string>;
  /** Turns the parsed values into params (rpc.py computes some, like malloc's num_blocks). */
  build?: (p: Record<string, unknown>) => Record<string, unknown>;
  /** Usage lines written out, when the generated one would not show the forms apart (the first is quoted in errors). */
  usage?: string[];
  /** Said last in --help: where the form differs from SPDK's rpc.py, and why. */
  note?: string;
}

const MiB = 2 ** 20;
/** A unit of `bytes` bytes, in words. */
export function unitName(bytes: number): string { return bytes === MiB ? 'MiB' : bytes === 1 ? 'bytes' : `units of ${bytes} bytes`; }
export const BYTES: SizeUnit = { bare: 1, sent: 1 };
export const MIB: SizeUnit = { bare: MiB, sent: MiB };
/** A size in bytes for a param in MiB: the older rpc.py's lvol sizes. The lvol is rounded up to clusters anyway. */
export const BYTES_AS_MIB: SizeUnit = { bare: 1, sent: MiB, roundUp: true };
/** A size in MiB for a param in bytes. */
const MIB_AS_BYTES: SizeUnit = { bare: MiB, sent: 1 };

const s = (key: string, optional = false, help?: string, meta?: string): Arg => ({ key, kind: 'string', optional, help, meta });
const n = (key: string, optional = false, help?: string): Arg => ({ key, kind: 'int', optional, help });
const z = (key: string, unit: SizeUnit, optional = false, help?: string, meta?: string): Arg => ({ key, kind: 'size', unit, optional, help, meta });
const f = (names: string[], key: string, kind: Kind = 'string', help?: string, meta?: string): Flag => ({ names, key, kind, help, meta });
const fz = (names: string[], key: string, unit: SizeUnit, help?: string, meta?: string): Flag => ({ names, key, kind: 'size', unit, help, meta });

export const FORMS: Readonly<Record<string, Form>> = {
  bdev_aio_create: {
    args: [s('filename', false, 'the file or block device (never created: make it first, e.g. with truncate)', 'FILE'), s('name', false, 'the new bdev\'s name'),
      z('block_size', BYTES, true, 'the block size (default: the device\'s logical block size, or 512 for a file)')],
    flags: [f(['-r', '--readonly'], 'readonly', 'bool'), f(['--fallocate'], 'fallocate', 'bool', 'serve UNMAP and WRITE_ZEROES with fallocate'),
      f(['-u', '--uuid'], 'uuid'), f(['--no-wait'], 'nowait', 'bool')],
  },
  bdev_aio_delete: { args: [s('name')] },
  bdev_aio_rescan: { args: [s('name')], flags: [f(['-f', '--force'], 'force', 'bool', 'shrink even below what connected clients were told (aionbd\'s own)')] },
  bdev_get_bdevs: { flags: [f(['-b', '--name'], 'name', 'string', 'only this bdev (a name or an alias)'), f(['-t', '--timeout'], 'timeout', 'int', 'milliseconds to wait for it to appear')] },
  bdev_get_iostat: {
    flags: [f(['-b', '--name'], 'name', 'string', 'only this bdev'), f(['--names'], 'names', 'csv', 'only these bdevs, comma-separated', 'A,B'),
      f(['-c', '--per-channel'], 'per_channel', 'bool'), f(['--reset-mode'], 'reset_mode')],
  },
  bdev_reset_iostat: { flags: [f(['-b', '--name'], 'name'), f(['-m', '--mode'], 'mode')] },
  bdev_malloc_create: {
    args: [{ ...z('total_size', MIB_AS_BYTES, false, 'the size', 'SIZE_MB'), json: 'num_blocks = SIZE_MB / BLOCK_SIZE' }, z('block_size', BYTES)],
    flags: [f(['-b', '--name'], 'name'), f(['-u', '--uuid'], 'uuid'), f(['-o', '--optimal-io-boundary'], 'optimal_io_boundary', 'int')],
    // rpc.py takes the size in MiB (read here into bytes) and sends a block count.
    build: ({ total_size, ...rest }) => ({ ...rest, num_blocks: Math.floor((total_size as number) / (rest['block_size'] as number)) }),
  },
  bdev_malloc_delete: { args: [s('name')] },
  bdev_error_create: {
    args: [s('base_name', false, 'the bdev to pass I/O through to (the error bdev claims it)', 'BASE'),
      s('name', true, 'the new bdev\'s name (default EE_BASE)')],
    flags: [f(['--uuid', '-u'], 'uuid')],
    note: 'NAME is aionbd\'s own: SPDK\'s rpc.py takes only BASE and always names the bdev EE_BASE (a UUID is given with --uuid, '
      + 'never in this position), so "bdev_error_create aio_test error_test" makes "error_test" here. Sent as the "name" param, '
      + 'which SPDK\'s server does not know. The result is true, as in SPDK, not the name.',
  },
  bdev_error_delete: { args: [s('name')] },
  bdev_error_inject_error: {
    args: [s('name'), s('io_type', false, 'read, write, unmap, flush, all or clear'), s('error_type', false, 'failure, pending, corrupt_data or nomem')],
    flags: [f(['-n', '--num'], 'num', 'int'), f(['-q', '--queue-depth'], 'queue_depth', 'int'),
      f(['-o', '--corrupt-offset'], 'corrupt_offset', 'int'), f(['-v', '--corrupt-value'], 'corrupt_value', 'int')],
  },
  bdev_error_resume_pending: { args: [s('name')] },
  bdev_delay_create: {
    flags: [f(['-b', '--base-bdev-name'], 'base_bdev_name'), f(['-d', '--name'], 'name'),
      f(['-r', '--avg-read-latency'], 'avg_read_latency', 'int', 'microseconds'), f(['-t', '--nine-nine-read-latency'], 'p99_read_latency', 'int', 'microseconds'),
      f(['-w', '--avg-write-latency'], 'avg_write_latency', 'int', 'microseconds'), f(['-n', '--nine-nine-write-latency'], 'p99_write_latency', 'int', 'microseconds'),
      f(['-u', '--uuid'], 'uuid')],
  },
  bdev_delay_update_latency: { args: [s('delay_bdev_name'), s('latency_type'), n('latency_us')] },
  bdev_delay_delete: { args: [s('name')] },
  bdev_raid_create: {
    flags: [f(['-n', '--name'], 'name'), f(['-z', '--strip-size-kb'], 'strip_size_kb', 'int', 'strip size in KiB'), f(['-r', '--raid-level'], 'raid_level', 'string', '0 or raid0'),
      f(['-b', '--base-bdevs'], 'base_bdevs', 'list', 'the members, space-separated in one argument', '"B1 B2"'), f(['--uuid', '-u'], 'uuid'),
      f(['-s', '--superblock'], 'superblock', 'bool')],
  },
  bdev_raid_get_bdevs: { args: [s('category', true)], build: (p) => ({ category: 'all', ...p }) },
  bdev_raid_delete: { args: [s('name')] },
  bdev_split_create: { args: [s('base_bdev'), n('split_count')], flags: [fz(['-s', '--split-size-mb'], 'split_size_mb', MIB, 'the size of each part', 'MB')] },
  bdev_split_delete: { args: [s('base_bdev')] },
  bdev_lvol_create_lvstore: {
    args: [s('bdev_name'), s('lvs_name')],
    flags: [fz(['-c', '--cluster-sz'], 'cluster_sz', BYTES, 'the cluster size (default 4M)', 'BYTES'), f(['--clear-method'], 'clear_method'),
      f(['-m', '--md-pages-per-cluster-ratio'], 'num_md_pages_per_cluster_ratio', 'int')],
  },
  bdev_lvol_get_lvstores: { flags: [f(['-u', '--uuid'], 'uuid'), f(['-l', '--lvs-name'], 'lvs_name')] },
  bdev_lvol_delete_lvstore: { flags: [f(['-u', '--uuid'], 'uuid'), f(['-l', '--lvs-name'], 'lvs_name')] },
  // Today's rpc.py: NAME MIB (-l LVS | -u UUID). The older form -n NAME -s BYTES works beside it.
  bdev_lvol_create: {
    args: [s('lvol_name', true, 'the lvol\'s name', 'NAME'), z('size_in_mib', MIB, true, 'its size, as today\'s rpc.py takes it', 'MIB')],
    flags: [f(['-l', '--lvs-name'], 'lvs_name', 'string', 'the lvstore, by name', 'LVS'), f(['-u', '--uuid'], 'uuid', 'string', 'the lvstore, by UUID'),
      f(['-t', '--thin-provision'], 'thin_provision', 'bool', 'allocate clusters on first write'),
      f(['-c', '--clear-method'], 'clear_method'), f(['-n', '--lvol-name'], 'lvol_name', 'string', 'the lvol\'s name, in place of NAME', 'NAME'),
      fz(['-s', '--size'], 'size_in_mib', BYTES_AS_MIB, 'its size, as the older rpc.py took it, rounded up to a whole MiB', 'BYTES'),
      fz(['--size-in-mib'], 'size_in_mib', MIB, 'its size, in place of MIB', 'MIB')],
    needs: { lvol_name: 'NAME or -n NAME', size_in_mib: 'MIB, -s BYTES or --size-in-mib MIB' },
    usage: ['bdev_lvol_create NAME MIB (-l LVS | -u UUID) [-t] [-c CLEAR_METHOD]',
      'bdev_lvol_create (-l LVS | -u UUID) -n NAME -s BYTES [-t] [-c CLEAR_METHOD]'],
    note: 'The positional size is in MiB, as today\'s rpc.py takes it; -s is in bytes, as the older rpc.py took it '
      + '(-s 1073741824 is 1 GiB). With a unit (512M, 1G, 2T) either one means what it says.',
  },
  bdev_lvol_delete: { args: [s('name')] },
  bdev_lvol_resize: {
    args: [s('name'), z('size_in_mib', MIB, false, 'the new size', 'MIB')],
    flags: [f(['-f', '--force'], 'force', 'bool', 'shrink even below what connected clients were told (aionbd\'s own)')],
  },
  // Snapshots and clones: rpc.py's positional forms.
  bdev_lvol_snapshot: { args: [s('lvol_name', false, 'the lvol (UUID or LVS/NAME)'), s('snapshot_name', false, 'the new snapshot\'s name')] },
  bdev_lvol_clone: { args: [s('snapshot_name', false, 'the snapshot or read-only lvol (UUID or LVS/NAME)'), s('clone_name', false, 'the new lvol\'s name')] },
  bdev_lvol_inflate: { args: [s('name')] },
  bdev_lvol_decouple_parent: { args: [s('name')] },
  bdev_lvol_set_read_only: { args: [s('name')] },
  bdev_lvol_get_lvols: { flags: [f(['-u', '--lvs-uuid'], 'lvs_uuid'), f(['-l', '--lvs-name'], 'lvs_name')] },
  nbd_export_add: {
    args: [s('bdev_name')],
    flags: [f(['-n', '--name'], 'name', 'string', 'the export name (default: the bdev\'s)'), f(['-r', '--readonly'], 'readonly', 'bool'),
      f(['-d', '--description'], 'description')],
  },
  nbd_export_remove: { args: [s('name')] },
  nbd_get_exports: { flags: [f(['-n', '--name'], 'name')] },
  // rpc.py's forms; the flags after them are our own attach settings.
  nbd_start_disk: {
    args: [s('bdev_name'), s('nbd_device', true)],
    flags: [f(['-c', '--num-connections'], 'num_connections', 'int'), f(['-t', '--timeout'], 'timeout', 'int', 'seconds'),
      f(['--dead-conn-timeout'], 'dead_conn_timeout', 'int', 'seconds'), fz(['-b', '--block-size'], 'block_size', BYTES),
      f(['-r', '--readonly'], 'readonly', 'bool')],
  },
  nbd_stop_disk: { args: [s('nbd_device')] },
  nbd_get_disks: { flags: [f(['-n', '--nbd-device'], 'nbd_device')] },
  rpc_get_methods: { flags: [f(['-c', '--current'], 'current', 'bool'), f(['-i', '--include-aliases'], 'include_aliases', 'bool')] },
  framework_get_config: { args: [s('name')] },
  log_set_level: { args: [s('level', false, 'ERROR, WARNING, NOTICE, INFO or DEBUG (case does not matter); also pino\'s fatal, trace, silent')] },
  // QoS and latency histograms. bdev_enable_histogram takes today's --histogram/--no-histogram and the older -e/-d.
  bdev_set_qos_limit: {
    args: [s('name')],
    flags: [f(['--rw-ios-per-sec'], 'rw_ios_per_sec', 'int', 'READ+WRITE per second (rounded up to a multiple of 1000; 0: no limit)'),
      f(['--rw-mbytes-per-sec'], 'rw_mbytes_per_sec', 'int', 'READ+WRITE MiB per second (0: no limit)'),
      f(['--r-mbytes-per-sec'], 'r_mbytes_per_sec', 'int', 'READ MiB per second (0: no limit)'),
      f(['--w-mbytes-per-sec'], 'w_mbytes_per_sec', 'int', 'WRITE MiB per second (0: no limit)')],
  },
  bdev_enable_histogram: {
    args: [s('name')],
    flags: [f(['--histogram', '-e', '--enable'], 'enable', 'bool', 'enable it'), f(['--no-histogram', '-d', '--disable'], 'disable', 'bool', 'disable it'),
      f(['-o', '--opc'], 'opc', 'string', 'count only this I/O type (read, write, unmap, ...)'), f(['--granularity'], 'granularity', 'int', 'buckets per power of two, as 2^N (default 7)'),
      f(['--min-nsec'], 'min_nsec', 'int', 'latencies below count in the first bucket (default 1000)'),
      f(['--max-nsec'], 'max_nsec', 'int', 'latencies at or above count in the last bucket (default 120 s)')],
    build: ({ disable, ...p }) => {
      if ((p['enable'] === true) === (disable === true)) throw new UsageError('bdev_enable_histogram: give --histogram (-e) or --no-histogram (-d)');
      return { ...p, enable: disable !== true };
    },
    usage: ['bdev_enable_histogram NAME (--histogram | --no-histogram) [-o OPC] [--granularity N] [--min-nsec NS] [--max-nsec NS]'],
  },
  bdev_get_histogram: { args: [s('name')] },
  // The RBD module (rpc.py's forms).
  bdev_rbd_register_cluster: {
    args: [s('name', false, 'the cluster\'s name, for bdev_rbd_create -c')],
    flags: [f(['--user-id'], 'user_id', 'string', 'the Ceph client (default: admin)'),
      f(['--config-param'], 'config_param', 'kv', 'a Ceph option, repeatable (mon_host=127.0.0.1, rados_osd_op_timeout=10)', 'KEY=VALUE'),
      f(['--config-file'], 'config_file', 'string', 'a ceph.conf', 'FILE'), f(['--key-file'], 'key_file', 'string', 'the client\'s key', 'FILE'),
      f(['--core-mask'], 'core_mask', 'string', 'accepted for SPDK; not used')],
  },
  bdev_rbd_unregister_cluster: { args: [s('name')] },
  bdev_rbd_get_clusters_info: { flags: [f(['-b', '--name'], 'name', 'string', 'only this cluster')] },
  bdev_rbd_create: {
    args: [s('pool_name', false, 'the pool', 'POOL'), s('rbd_name', false, 'the image', 'IMAGE'), z('block_size', BYTES, false, 'the bdev\'s block size')],
    flags: [f(['-b', '--name'], 'name', 'string', 'the bdev\'s name (default Ceph0, Ceph1, ...)'), f(['-c', '--cluster-name'], 'cluster_name', 'string', 'a registered cluster'),
      f(['--user-id'], 'user_id', 'string', 'the Ceph client of a connection of the bdev\'s own'),
      f(['--config'], 'config', 'kv', 'a Ceph option of that connection, repeatable', 'KEY=VALUE'), f(['-u', '--uuid'], 'uuid'),
      f(['-r', '--read-only'], 'read_only', 'bool')],
  },
  bdev_rbd_delete: { args: [s('name')] },
  bdev_rbd_resize: { args: [s('name'), z('new_size', MIB, false, 'the new size (it only grows)', 'MIB')] },
};
