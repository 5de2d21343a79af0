// Argument parsers shared by the subcommands (commander's argParser callbacks). Each bound is
// checked here, so a bad value is a usage error (exit 2) before anything is opened or created.
import { InvalidArgumentError } from 'commander';
import { parseSize } from '../util/size.js';

export { LOG_LEVELS } from '../log.js';

/** A whole number in [min, max], or commander's usage error. */
export function intArg(min: number, max: number): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    return n;
  };
}

/** A number of seconds in [min, max]; fractions allowed. */
export function secondsArg(min: number, max: number): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max)
      throw new InvalidArgumentError(`must be a number of seconds from ${min} to ${max}`);
    return n;
  };
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/** A size (512, 4K, 32M) that is a power of two in [min, max]. */
export function powerOfTwoArg(min: number, max: number, unit: (n: number) => string): (v: string) => number {
  return (v: string): number => {
    let n: number;
    try {
      n = parseSize(v);
    } catch {
      throw new InvalidArgumentError(`must be a power of two from ${unit(min)} to ${unit(max)}`);
    }
    if (!isPowerOfTwo(n) || n < min || n > max) throw new InvalidArgumentError(`must be a power of two from ${unit(min)} to ${unit(max)}`);
    return n;
  };
}

/** For repeatable options: each use adds one value. */
export function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}
