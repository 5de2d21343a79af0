// --aio FILE[,name=N][,bs=B][,size=S][,prealloc=P][,readonly][,description=D]
import path from 'node:path';
import { UsageError } from '../errors.js';
import { checkName } from '../bdev/names.js';
import { formatSize, parseSize } from '../util/size.js';
import { isPowerOfTwo } from './args.js';
import { PREALLOC_MODES, type Prealloc } from './prealloc.js';

/**
 * The largest bs= taken: 2^16, the NBD spec's ceiling for a minimum block size (and far above
 * the 4096 that the kernel's nbd driver and O_DIRECT need).
 */
export const MAX_BLOCK_SIZE = 64 * 1024;
/** The block size of a file without bs= (the bdev's default), which size= must be a multiple of. */
const DEFAULT_FILE_BLOCK_SIZE = 512;

export interface AioSpec {
  filename: string;
  name: string;
  blockSize: number | undefined;
  size: number | undefined;
  readonly: boolean;
  /** How a file that size= creates is allocated; absent: sparse. */
  prealloc?: Prealloc | undefined;
  /** NBD_INFO_DESCRIPTION of the export (no commas: they separate keys). */
  description?: string | undefined;
}

export function parseAioSpec(spec: string): AioSpec {
  const parts = spec.split(',');
  const filename = parts[0] ?? '';
  if (filename === '') throw new UsageError(`bad --aio "${spec}": the file name comes first (--aio FILE[,name=N][,bs=B][,size=S][,prealloc=P][,readonly][,description=D])`);
  const out: AioSpec = { filename, name: defaultName(filename), blockSize: undefined, size: undefined, readonly: false };
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    const key = eq < 0 ? p : p.slice(0, eq);
    const val = eq < 0 ? undefined : p.slice(eq + 1);
    const need = (): string => {
      if (val === undefined || val === '') throw new UsageError(`bad --aio "${spec}": ${key} needs a value (${key}=...)`);
      return val;
    };
    switch (key) {
      case 'name': out.name = checkName(need()); break;
      case 'bs': case 'block_size': out.blockSize = blockSize(spec, need()); break;
      case 'size': out.size = parseSize(need(), 'size'); break;
      case 'description': case 'desc': out.description = need(); break;
      case 'prealloc': out.prealloc = prealloc(spec, need()); break;
      case 'readonly': case 'ro':
        if (val !== undefined && !['1', 'true', 'yes', 'on'].includes(val)) {
          if (!['0', 'false', 'no', 'off'].includes(val)) throw new UsageError(`bad --aio "${spec}": readonly takes no value (or true/false)`);
        } else {
          out.readonly = true;
        }
        break;
      default:
        throw new UsageError(`bad --aio "${spec}": unknown key "${key}" (known: name, bs, size, prealloc, readonly, description)`);
    }
  }
  // Checked before the file is created: a size that is not whole blocks would be created, then refused.
  const bs = out.blockSize ?? DEFAULT_FILE_BLOCK_SIZE;
  if (out.size !== undefined && out.size % bs !== 0) {
    throw new UsageError(`bad --aio "${spec}": size must be a whole number of ${bs}-byte blocks`);
  }
  // prealloc= says how size= creates the file: without size= there is nothing it could apply to.
  if (out.prealloc !== undefined && out.prealloc !== 'sparse' && out.size === undefined) {
    throw new UsageError(`bad --aio "${spec}": prealloc=${out.prealloc} applies to the file size= creates: give size=`);
  }
  return out;
}

function prealloc(spec: string, v: string): Prealloc {
  const mode = PREALLOC_MODES.find((m) => m === v);
  if (mode === undefined) throw new UsageError(`bad --aio "${spec}": prealloc is one of ${PREALLOC_MODES.join(', ')}`);
  return mode;
}

function blockSize(spec: string, v: string): number {
  const n = parseSize(v, 'block size');
  if (n < 512 || n > MAX_BLOCK_SIZE || !isPowerOfTwo(n)) {
    throw new UsageError(`bad --aio "${spec}": bs must be a power of two from 512 to ${formatSize(MAX_BLOCK_SIZE)}`);
  }
  return n;
}

function defaultName(filename: string): string {
  const base = path.basename(filename).replace(/\.(img|raw|bin|disk)$/i, '');
  const cleaned = base.replace(/[^A-Za-z0-9_.:+-]/g, '_').replace(/^[^A-Za-z0-9_]+/, '');
  return cleaned === '' ? 'aio0' : cleaned.slice(0, 128);
}
