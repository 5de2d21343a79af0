// Where files named over RPC may live (--allow-path). A path is judged by its real path
// (symlinks and ".." resolved), and must be a regular file or a block device under a root.
import fs from 'node:fs';
import path from 'node:path';
import { PathNotAllowedError, PathNotFoundError, SystemError } from '../errors.js';

export class AllowedPaths {
  readonly roots: string[];

  constructor(roots: string[]) {
    // Roots are resolved now where they exist, so a root that is itself a symlink still matches.
    this.roots = roots.map((r) => {
      const abs = path.resolve(r);
      try { return fs.realpathSync(abs); } catch { return abs; }
    });
  }

  /** The real path of `p` when it may be used; throws PathNotAllowedError or PathNotFoundError. */
  check(p: string): string {
    let real: string;
    try {
      real = fs.realpathSync(path.resolve(p));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') throw new PathNotFoundError(p);
      throw new SystemError(`${p}: ${e.message}`, e.errno === undefined ? 5 : -e.errno, { cause: e });
    }
    if (!this.roots.some((r) => real === r || real.startsWith(r.endsWith('/') ? r : `${r}/`))) {
      throw new PathNotAllowedError(`${p} is outside the allowed paths (${this.roots.join(', ')}); start the server with --allow-path to permit it`);
    }
    const st = fs.statSync(real);
    if (!st.isFile() && !st.isBlockDevice()) throw new PathNotAllowedError(`${p} is not a regular file or a block device`);
    return real;
  }
}
