// The kernel cache directory, and the file steps that keep it consistent when two processes
// build at once: every entry is built under a temporary name in the same directory and renamed
// into place, so both end with a complete entry and neither sees a half-built one.

import { randomBytes } from 'node:crypto';
import { promises as fsp, constants as fsConstants } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** $AIONBD_CACHE_DIR, else ~/.cache/aionbd; kernel_assets.ts describes what it holds. */
export function cacheDir(): string {
  const fromEnv = process.env['AIONBD_CACHE_DIR'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.cache', 'aionbd');
}

/** Whether `path` exists (any type). */
export async function exists(path: string): Promise<boolean> {
  try {
    await fsp.access(path, fsConstants.F_OK);
    return true;
  } catch {
    return false;
  }
}

/** A name in `dir` no other process uses, recognised (and swept when stale) by sweepStaleTemps. */
export function tmpName(dir: string, stem: string): string {
  return join(dir, `.tmp-${stem}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Writes a small file atomically (temp + rename), so readers never see it half written. */
export async function writeAtomic(path: string, data: string | Buffer): Promise<void> {
  const tmp = tmpName(dirname(path), basename(path));
  await fsp.writeFile(tmp, data);
  await fsp.rename(tmp, path);
}

/** Removes what builds killed midway left behind (temp names older than an hour). */
export async function sweepStaleTemps(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  const cutoff = Date.now() - 3_600_000;
  for (const n of names) {
    if (!n.startsWith('.tmp-')) continue;
    const p = join(dir, n);
    try {
      if ((await fsp.lstat(p)).mtimeMs < cutoff) await fsp.rm(p, { recursive: true, force: true });
    } catch {
      // Someone else swept it.
    }
  }
}

/** Renames a freshly built directory into place; if another process got there first, keeps theirs. */
export async function renameDirIntoPlace(tmp: string, dest: string): Promise<void> {
  try {
    await fsp.rename(tmp, dest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') {
      await fsp.rm(tmp, { recursive: true, force: true });
      return;
    }
    throw e;
  }
}
