import { InvalidBdevError, UsageError } from '../errors.js';

/** Bdev and export names: what SPDK and URIs handle without quoting trouble. */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,127}$/;

export function checkName(name: string, what = 'bdev name'): string {
  if (!NAME.test(name))
    throw new UsageError(`bad ${what} "${name}": use 1-128 letters, digits and _ . : + - (not starting with a punctuation mark)`);
  return name;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A UUID given for a new bdev, lower-cased; refused when it is not one. */
export function checkUuid(u: string | undefined): string | undefined {
  if (u !== undefined && !UUID.test(u)) throw new InvalidBdevError(`"${u}" is not a UUID`);
  return u?.toLowerCase();
}
