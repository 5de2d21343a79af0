// rpc.py's command-line forms for the methods it knows: positional arguments and flags turn
// into the JSON params SPDK's client would send. Any method also takes raw JSON params.
import { UsageError } from '../errors.js';

type Kind = 'string' | 'int' | 'bool' | 'list' | 'csv';

interface Arg { key: string; kind: Kind; optional?: boolean }
interface Flag extends Arg { names: string[] }
interface Form {
  args?: Arg[];
  flags?: Flag[];
  /** Turns the parsed values into params (rpc.py computes some, like malloc's num_blocks). */
  build?: (p: Record<string, unknown>) => Record<string, unknown>;
}

const s = (key: string, optional = false): Arg => ({ key, kind: 'string', optional });
const n = (key: string, optional = false): Arg => ({ key, kind: 'int', optional });
const f = (names: string[], key: string, kind: Kind = 'string'): Flag => ({ names, key, kind });

export const FORMS: Readonly<Record<string, Form>> = {
  bdev_aio_create: {
    args: [s('filename'), s('name'), n('block_size', true)],
    flags: [f(['-r', '--readonly'], 'readonly', 'bool'), f(['--fallocate'], 'fallocate', 'bool'), f(['-u', '--uuid'], 'uuid'), f(['--no-wait'], 'nowait', 'bool')],
  },
  bdev_aio_delete: { args: [s('name')] },
  bdev_aio_rescan: { args: [s('name')] },
  bdev_get_bdevs: { flags: [f(['-b', '--name'], 'name'), f(['-t', '--timeout'], 'timeout', 'int')] },
  bdev_get_iostat: {
    flags: [f(['-b', '--name'], 'name'), f(['--names'], 'names', 'csv'), f(['-c', '--per-channel'], 'per_channel', 'bool'), f(['--reset-mode'], 'reset_mode')],
  },
  bdev_reset_iostat: { flags: [f(['-b', '--name'], 'name'), f(['-m', '--mode'], 'mode')] },
  bdev_malloc_create: {
    args: [n('total_size'), n('block_size')],
    flags: [f(['-b', '--name'], 'name'), f(['-u', '--uuid'], 'uuid'), f(['-o', '--optimal-io-boundary'], 'optimal_io_boundary', 'int')],
    // rpc.py takes the size in MiB and sends a block count.
    build: ({ total_size, ...rest }) => ({ ...rest, num_blocks: Math.floor(((total_size as number) * 2 ** 20) / (rest['block_size'] as number)) }),
  },
  bdev_malloc_delete: { args: [s('name')] },
  bdev_error_create: { args: [s('base_name')], flags: [f(['--uuid', '-u'], 'uuid')] },
  bdev_error_delete: { args: [s('name')] },
  bdev_error_inject_error: {
    args: [s('name'), s('io_type'), s('error_type')],
    flags: [f(['-n', '--num'], 'num', 'int'), f(['-q', '--queue-depth'], 'queue_depth', 'int'),
      f(['-o', '--corrupt-offset'], 'corrupt_offset', 'int'), f(['-v', '--corrupt-value'], 'corrupt_value', 'int')],
  },
  bdev_error_resume_pending: { args: [s('name')] },
  bdev_delay_create: {
    flags: [f(['-b', '--base-bdev-name'], 'base_bdev_name'), f(['-d', '--name'], 'name'),
      f(['-r', '--avg-read-latency'], 'avg_read_latency', 'int'), f(['-t', '--nine-nine-read-latency'], 'p99_read_latency', 'int'),
      f(['-w', '--avg-write-latency'], 'avg_write_latency', 'int'), f(['-n', '--nine-nine-write-latency'], 'p99_write_latency', 'int'),
      f(['-u', '--uuid'], 'uuid')],
  },
  bdev_delay_update_latency: { args: [s('delay_bdev_name'), s('latency_type'), n('latency_us')] },
  bdev_delay_delete: { args: [s('name')] },
  bdev_raid_create: {
    flags: [f(['-n', '--name'], 'name'), f(['-z', '--strip-size-kb'], 'strip_size_kb', 'int'), f(['-r', '--raid-level'], 'raid_level'),
      f(['-b', '--base-bdevs'], 'base_bdevs', 'list'), f(['--uuid', '-u'], 'uuid'), f(['-s', '--superblock'], 'superblock', 'bool')],
  },
  bdev_raid_get_bdevs: { args: [s('category', true)], build: (p) => ({ category: 'all', ...p }) },
  bdev_raid_delete: { args: [s('name')] },
  bdev_split_create: { args: [s('base_bdev'), n('split_count')], flags: [f(['-s', '--split-size-mb'], 'split_size_mb', 'int')] },
  bdev_split_delete: { args: [s('base_bdev')] },
  bdev_lvol_create_lvstore: {
    args: [s('bdev_name'), s('lvs_name')],
    flags: [f(['-c', '--cluster-sz'], 'cluster_sz', 'int'), f(['--clear-method'], 'clear_method'), f(['-m', '--md-pages-per-cluster-ratio'], 'num_md_pages_per_cluster_ratio', 'int')],
  },
  bdev_lvol_get_lvstores: { flags: [f(['-u', '--uuid'], 'uuid'), f(['-l', '--lvs-name'], 'lvs_name')] },
  bdev_lvol_delete_lvstore: { flags: [f(['-u', '--uuid'], 'uuid'), f(['-l', '--lvs-name'], 'lvs_name')] },
  // rpc.py's form is NAME SIZE_MIB (-l LVS | -u UUID); -n NAME and -s MIB are accepted too.
  bdev_lvol_create: {
    args: [s('lvol_name', true), n('size_in_mib', true)],
    flags: [f(['-l', '--lvs-name'], 'lvs_name'), f(['-u', '--uuid'], 'uuid'), f(['-t', '--thin-provision'], 'thin_provision', 'bool'),
      f(['-c', '--clear-method'], 'clear_method'), f(['-n', '--lvol-name'], 'lvol_name'), f(['-s', '--size-in-mib'], 'size_in_mib', 'int')],
  },
  bdev_lvol_delete: { args: [s('name')] },
  bdev_lvol_resize: { args: [s('name'), n('size_in_mib')] },
  nbd_export_add: {
    args: [s('bdev_name')],
    flags: [f(['-n', '--name'], 'name'), f(['-r', '--readonly'], 'readonly', 'bool'), f(['-d', '--description'], 'description')],
  },
  nbd_export_remove: { args: [s('name')] },
  nbd_get_exports: { flags: [f(['-n', '--name'], 'name')] },
  // rpc.py's forms; the flags after them are our own attach settings.
  nbd_start_disk: {
    args: [s('bdev_name'), s('nbd_device', true)],
    flags: [f(['-c', '--num-connections'], 'num_connections', 'int'), f(['-t', '--timeout'], 'timeout', 'int'),
      f(['--dead-conn-timeout'], 'dead_conn_timeout', 'int'), f(['-b', '--block-size'], 'block_size', 'int'),
      f(['-r', '--readonly'], 'readonly', 'bool')],
  },
  nbd_stop_disk: { args: [s('nbd_device')] },
  nbd_get_disks: { flags: [f(['-n', '--nbd-device'], 'nbd_device')] },
  rpc_get_methods: { flags: [f(['-c', '--current'], 'current', 'bool'), f(['-i', '--include-aliases'], 'include_aliases', 'bool')] },
  framework_get_config: { args: [s('name')] },
};

function convert(kind: Kind, v: string, what: string): unknown {
  switch (kind) {
    case 'int': {
      const x = Number(v);
      if (v.trim() === '' || !Number.isSafeInteger(x)) throw new UsageError(`${what} must be a whole number, not "${v}"`);
      return x;
    }
    case 'list': return v.split(/\s+/).filter((x) => x !== '');
    case 'csv': return v.split(',').filter((x) => x !== '');
    default: return v;
  }
}

/** The params for `method` from its command-line words; raw JSON (one word starting with "{") for any method. */
export function paramsFromArgs(method: string, words: string[]): Record<string, unknown> | undefined {
  if (words.length === 1 && (words[0] ?? '').trimStart().startsWith('{')) {
    let v: unknown;
    try { v = JSON.parse(words[0] ?? ''); } catch (err) { throw new UsageError(`the params are not valid JSON: ${(err as Error).message}`); }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError('the params must be a JSON object');
    return v as Record<string, unknown>;
  }
  const form = FORMS[method];
  if (form === undefined) {
    if (words.length > 0) throw new UsageError(`${method}: give its params as one JSON object, e.g. '{"name": "x"}'`);
    return undefined;
  }
  const out: Record<string, unknown> = {};
  const positional: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i] ?? '';
    const eq = w.startsWith('--') ? w.indexOf('=') : -1;
    const name = eq > 0 ? w.slice(0, eq) : w;
    const flag = w.startsWith('-') && !/^-\d/.test(w) ? form.flags?.find((x) => x.names.includes(name)) : undefined;
    if (flag === undefined) {
      if (w.startsWith('-') && !/^-\d/.test(w)) throw new UsageError(`${method}: unknown option ${w}`);
      positional.push(w);
      continue;
    }
    if (flag.kind === 'bool') { out[flag.key] = true; continue; }
    const v = eq > 0 ? w.slice(eq + 1) : words[++i];
    if (v === undefined) throw new UsageError(`${method}: ${name} needs a value`);
    out[flag.key] = convert(flag.kind, v, name);
  }
  const args = form.args ?? [];
  if (positional.length > args.length) throw new UsageError(`${method}: too many arguments (${usage(method)})`);
  args.forEach((a, i) => {
    const v = positional[i];
    if (v === undefined) {
      if (a.optional !== true) throw new UsageError(`${method}: missing ${a.key.toUpperCase()} (${usage(method)})`);
      return;
    }
    out[a.key] = convert(a.kind, v, a.key.toUpperCase());
  });
  return form.build !== undefined ? form.build(out) : out;
}

export function usage(method: string): string {
  const form = FORMS[method];
  if (form === undefined) return `${method} ['{JSON params}']`;
  const args = (form.args ?? []).map((a) => (a.optional === true ? `[${a.key.toUpperCase()}]` : a.key.toUpperCase()));
  const flags = (form.flags ?? []).map((x) => `[${x.names[0] ?? ''}${x.kind === 'bool' ? '' : ` ${x.key.toUpperCase()}`}]`);
  return [method, ...args, ...flags].join(' ');
}
