// Argument parsers shared by the subcommands (commander's argParser callbacks).
import { InvalidArgumentError } from 'commander';

/** pino's levels, as `--log-level` takes them. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** A whole number in [min, max], or commander's usage error. */
export function intArg(min: number, max: number): (v: string) => number {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    return n;
  };
}

/** For repeatable options: each use adds one value. */
export function collect(v: string, prev: string[]): string[] { return [...prev, v]; }
