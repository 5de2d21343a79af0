// Sizes with binary suffixes: 512K, 256M, 1G, 2T, or plain bytes.
import { UsageError } from '../errors.js';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

export function parseSize(s: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtpb]?)(?:i?b)?\s*$/i.exec(s);
  if (m === null) throw new UsageError(`bad ${what} "${s}": use bytes or a binary suffix (512K, 256M, 1G, 2T)`);
  const n = Number(m[1]) * (UNITS[(m[2] ?? '').toLowerCase()] ?? 1);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`bad ${what} "${s}": must be a positive whole number of bytes`);
  return n;
}

export function formatSize(n: number): string {
  for (const [u, v] of [
    ['T', 2 ** 40],
    ['G', 2 ** 30],
    ['M', 2 ** 20],
    ['K', 2 ** 10],
  ] as const) {
    if (n >= v && n % v === 0) return `${n / v}${u}`;
  }
  return `${n}`;
}
