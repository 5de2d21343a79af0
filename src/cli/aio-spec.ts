// --aio FILE[,name=N][,bs=B][,size=S][,prealloc=P][,readonly][,description=D], and --uring with
// the same spec (the same file bdev over io_uring).
import path from 'node:path';
import { checkName } from '../bdev/names.js';
import { parseSize } from '../util/size.js';
import { PREALLOC_MODES, type Prealloc } from './prealloc.js';
import { nameFrom, specBlockSize, splitSpec, type Spec } from './spec.js';

/** The block size of a file without bs= (the bdev's default), which size= must be a multiple of. */
const DEFAULT_FILE_BLOCK_SIZE = 512;

/** The module of a file spec's bdev: --aio or --uring. */
export type FileSpecModule = 'aio' | 'uring';

export interface AioSpec {
  /** Absent: aio. */
  module?: FileSpecModule | undefined;
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
  return parseFileSpec('aio', spec);
}

export function parseUringSpec(spec: string): AioSpec {
  return parseFileSpec('uring', spec);
}

function parseFileSpec(module: FileSpecModule, spec: string): AioSpec {
  const flag = `--${module}`;
  const s = splitSpec(flag, spec);
  const filename = s.first;
  if (filename === '')
    throw s.bad(`the file name comes first (${flag} FILE[,name=N][,bs=B][,size=S][,prealloc=P][,readonly][,description=D])`);
  const out: AioSpec = {
    ...(module === 'aio' ? {} : { module }),
    filename,
    name: nameFrom(path.basename(filename).replace(/\.(img|raw|bin|disk)$/i, ''), `${module}0`),
    blockSize: undefined,
    size: undefined,
    readonly: false,
  };
  for (const k of s.keys) {
    switch (k.key) {
      case 'name':
        out.name = checkName(k.need());
        break;
      case 'bs':
      case 'block_size':
        out.blockSize = specBlockSize(s, k.need());
        break;
      case 'size':
        out.size = parseSize(k.need(), 'size');
        break;
      case 'description':
      case 'desc':
        out.description = k.need();
        break;
      case 'prealloc':
        out.prealloc = prealloc(s, k.need());
        break;
      case 'readonly':
      case 'ro':
        if (k.value !== undefined && !['1', 'true', 'yes', 'on'].includes(k.value)) {
          if (!['0', 'false', 'no', 'off'].includes(k.value)) throw s.bad('readonly takes no value (or true/false)');
        } else {
          out.readonly = true;
        }
        break;
      default:
        throw s.bad(`unknown key "${k.key}" (known: name, bs, size, prealloc, readonly, description)`);
    }
  }
  // Checked before the file is created: a size that is not whole blocks would be created, then refused.
  const bs = out.blockSize ?? DEFAULT_FILE_BLOCK_SIZE;
  if (out.size !== undefined && out.size % bs !== 0) throw s.bad(`size must be a whole number of ${bs}-byte blocks`);
  // prealloc= says how size= creates the file: without size= there is nothing it could apply to.
  if (out.prealloc !== undefined && out.prealloc !== 'sparse' && out.size === undefined) {
    throw s.bad(`prealloc=${out.prealloc} applies to the file size= creates: give size=`);
  }
  return out;
}

function prealloc(s: Spec, v: string): Prealloc {
  const mode = PREALLOC_MODES.find((m) => m === v);
  if (mode === undefined) throw s.bad(`prealloc is one of ${PREALLOC_MODES.join(', ')}`);
  return mode;
}
