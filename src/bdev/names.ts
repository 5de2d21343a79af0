import { UsageError } from '../errors.js';

/** Bdev and export names: what SPDK and URIs handle without quoting trouble. */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,127}$/;

export function checkName(name: string, what = 'bdev name'): string {
  if (!NAME.test(name)) throw new UsageError(`bad ${what} "${name}": use 1-128 letters, digits and _ . : + - (not starting with a punctuation mark)`);
  return name;
}
