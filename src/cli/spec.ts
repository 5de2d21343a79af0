// What --aio and --rbd specs share: "FIRST,KEY[=VALUE],...", the first field naming what to
// open and each key after it a setting, with errors that quote the whole spec.
import { UsageError } from '../errors.js';
import { formatSize, parseSize } from '../util/size.js';
import { isPowerOfTwo } from './args.js';

/**
 * The largest bs= taken: 2^16, the NBD spec's ceiling for a minimum block size (and far above
 * the 4096 that the kernel's nbd driver and O_DIRECT need).
 */
export const MAX_BLOCK_SIZE = 64 * 1024;

/** One KEY or KEY=VALUE of a spec. */
export interface SpecKey {
  readonly key: string;
  /** undefined for a bare KEY. */
  readonly value: string | undefined;
  /** The value, refused when missing or empty. */
  need(): string;
}

export interface Spec {
  /** What comes before the first comma. */
  readonly first: string;
  readonly keys: readonly SpecKey[];
  /** The error for this spec: `bad --aio "SPEC": why`. */
  bad(why: string): UsageError;
}

/** Splits a spec given to `flag` (--aio, --rbd). */
export function splitSpec(flag: string, spec: string): Spec {
  const bad = (why: string): UsageError => new UsageError(`bad ${flag} "${spec}": ${why}`);
  const [first = '', ...rest] = spec.split(',');
  const keys = rest.map((p): SpecKey => {
    const eq = p.indexOf('=');
    const key = eq < 0 ? p : p.slice(0, eq);
    const value = eq < 0 ? undefined : p.slice(eq + 1);
    return {
      key,
      value,
      need: () => {
        if (value === undefined || value === '') throw bad(`${key} needs a value (${key}=...)`);
        return value;
      },
    };
  });
  return { first, keys, bad };
}

/** bs=: a power of two from 512 to MAX_BLOCK_SIZE, with or without a unit. */
export function specBlockSize(s: Spec, v: string): number {
  const n = parseSize(v, 'block size');
  if (n < 512 || n > MAX_BLOCK_SIZE || !isPowerOfTwo(n)) throw s.bad(`bs must be a power of two from 512 to ${formatSize(MAX_BLOCK_SIZE)}`);
  return n;
}

/** A bdev name made from a file or image name: characters a name may not hold become "_". */
export function nameFrom(base: string, fallback: string): string {
  const cleaned = base.replace(/[^A-Za-z0-9_.:+-]/g, '_').replace(/^[^A-Za-z0-9_]+/, '');
  return cleaned === '' ? fallback : cleaned.slice(0, 128);
}
