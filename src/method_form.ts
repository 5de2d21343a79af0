// rpc.py's command-line form of a JSON-RPC method, as data: positional arguments and flags, the
// JSON param each one fills, and what `aionbd rpc METHOD --help` says of each. A method declares
// its form beside its schema (src/method.ts); the CLI parses words with it (src/cli/rpc_args.ts)
// and prints its help from it (src/cli/rpc_help.ts).

/** kv: KEY=VALUE, repeatable; each use adds one key to an object param. */
export type Kind = 'string' | 'int' | 'bool' | 'list' | 'csv' | 'size' | 'kv';

/**
 * How a size is read: a bare number counts `bare` bytes each; a number with a unit (512K, 256M,
 * 1G) is bytes. The param is sent as a count of `sent` bytes; a size that is not a whole count
 * is refused, or rounded up where `roundUp` says so.
 */
export interface SizeUnit {
  bare: number;
  sent: number;
  roundUp?: boolean;
}

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
export interface Flag extends Arg {
  names: string[];
}
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
export function unitName(bytes: number): string {
  return bytes === MiB ? 'MiB' : bytes === 1 ? 'bytes' : `units of ${bytes} bytes`;
}
export const BYTES: SizeUnit = { bare: 1, sent: 1 };
export const MIB: SizeUnit = { bare: MiB, sent: MiB };
/** A size in bytes for a param in MiB: the older rpc.py's lvol sizes. The lvol is rounded up to clusters anyway. */
export const BYTES_AS_MIB: SizeUnit = { bare: 1, sent: MiB, roundUp: true };
/** A size in MiB for a param in bytes. */
export const MIB_AS_BYTES: SizeUnit = { bare: MiB, sent: 1 };

/** A positional string argument. */
export const str = (key: string, optional = false, help?: string, meta?: string): Arg => ({ key, kind: 'string', optional, help, meta });
/** A positional whole number. */
export const int = (key: string, optional = false, help?: string): Arg => ({ key, kind: 'int', optional, help });
/** A positional size, read as `unit` says. */
export const size = (key: string, unit: SizeUnit, optional = false, help?: string, meta?: string): Arg => ({
  key,
  kind: 'size',
  unit,
  optional,
  help,
  meta,
});
/** A flag (-x, --long) filling `key`. */
export const flag = (names: string[], key: string, kind: Kind = 'string', help?: string, meta?: string): Flag => ({
  names,
  key,
  kind,
  help,
  meta,
});
/** A flag taking a size, read as `unit` says. */
export const sizeFlag = (names: string[], key: string, unit: SizeUnit, help?: string, meta?: string): Flag => ({
  names,
  key,
  kind: 'size',
  unit,
  help,
  meta,
});

/**
 * rpc.py's `SIZE_MB BLOCK_SIZE` positionals of bdev_malloc_create and bdev_null_create: the size
 * (MiB bare, or with a unit) and the block size, sent as num_blocks and block_size. A form puts
 * these in its args and sendsBlockCount as its build.
 */
export const SIZE_MB_BLOCK_SIZE: readonly Arg[] = [
  { ...size('total_size', MIB_AS_BYTES, false, 'the size', 'SIZE_MB'), json: 'num_blocks = SIZE_MB / BLOCK_SIZE' },
  size('block_size', BYTES),
];

/** The build of a form with SIZE_MB_BLOCK_SIZE: rpc.py sends the size as a block count. */
export function sendsBlockCount({ total_size, ...rest }: Record<string, unknown>): Record<string, unknown> {
  return { ...rest, num_blocks: Math.floor((total_size as number) / (rest['block_size'] as number)) };
}
