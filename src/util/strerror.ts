// errno -> the C library's strerror() text, which SPDK puts in its RPC error messages (and
// scripts match). libuv's wording differs, so the common ones are spelled out here.
import { getSystemErrorMap } from 'node:util';

const GLIBC: Readonly<Record<number, string>> = {
  1: 'Operation not permitted',
  2: 'No such file or directory',
  5: 'Input/output error',
  9: 'Bad file descriptor',
  11: 'Resource temporarily unavailable',
  12: 'Cannot allocate memory',
  13: 'Permission denied',
  16: 'Device or resource busy',
  17: 'File exists',
  19: 'No such device',
  20: 'Not a directory',
  21: 'Is a directory',
  22: 'Invalid argument',
  28: 'No space left on device',
  30: 'Read-only file system',
  95: 'Operation not supported',
  108: 'Cannot send after transport endpoint shutdown',
  125: 'Operation canceled',
};

export function strerror(errno: number): string {
  const e = Math.abs(errno);
  const known = GLIBC[e];
  if (known !== undefined) return known;
  const uv = getSystemErrorMap().get(-e);
  return uv === undefined ? `Unknown error ${e}` : uv[1].charAt(0).toUpperCase() + uv[1].slice(1);
}

/** The symbolic name (ENODEV), or undefined. */
export function errnoName(errno: number): string | undefined {
  return getSystemErrorMap().get(-Math.abs(errno))?.[0];
}
