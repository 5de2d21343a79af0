// Where files named over RPC may live (--allow-path). A path is first made real (symlinks and
// ".." resolved) to find its root; the file is then opened beneath that root by the AIO bdev
// (src/modules/aio/open_file.ts), which judges the opened fd, so a name swapped after this check
// cannot lead outside.
import fs from 'node:fs';
import path from 'node:path';
import { PathNotAllowedError, PathNotFoundError, SystemError } from '../errors.js';
import type { PathPolicy } from '../method.js';

/** A path accepted under a root: open `filename` with `within: root`. */
export interface AllowedPath {
  filename: string;
  root: string;
}

export class AllowedPaths implements PathPolicy {
  readonly roots: string[];

  constructor(roots: string[]) {
    // Roots are resolved now where they exist, so a root that is itself a symlink still matches.
    this.roots = roots.map((r) => {
      const abs = path.resolve(r);
      try {
        return fs.realpathSync(abs);
      } catch {
        return abs;
      }
    });
  }

  /** The real path of `p` and its root; throws PathNotAllowedError or PathNotFoundError. */
  check(p: string): AllowedPath {
    let real: string;
    try {
      real = fs.realpathSync(path.resolve(p));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') throw new PathNotFoundError(p);
      // realpath met a symlink that stopped being one: the path is being changed under us.
      if (e.code === 'EINVAL') throw new PathNotAllowedError(`${p} changed while it was checked; refused`, { cause: e });
      throw new SystemError(`${p}: ${e.message}`, e.errno === undefined ? 5 : -e.errno, { cause: e });
    }
    const root = this.roots.find((r) => real === r || real.startsWith(r.endsWith('/') ? r : `${r}/`));
    if (root === undefined) {
      throw new PathNotAllowedError(
        `${p} is outside the allowed paths (${this.roots.join(', ')}); start the server with --allow-path to permit it`,
      );
    }
    return { filename: real, root };
  }
}
