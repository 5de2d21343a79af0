// Opens the file under an AIO bdev through the addon (native/open_file.cc): never blocking,
// judged by the opened fd and not by its name, and beneath an --allow-path root when one is
// given. The fd returned is the one that was judged; nothing opens the file by name again.
import fs from 'node:fs';
import path from 'node:path';
import { native, type OpenedFile } from '../../native.js';
import { InvalidBdevError, PathNotAllowedError, PathNotFoundError, SystemError, describeOpenError } from '../../errors.js';

export interface OpenTarget {
  readonly: boolean;
  /** O_DIRECT wanted (it is dropped, and `direct` says so, where the file system refuses it). */
  direct: boolean;
  /**
   * An --allow-path root: `filename` must be a real path under it (AllowedPaths.check made it
   * so), and is resolved beneath it, with no symlink followed; a file with several hard links is
   * refused, as another of its names may lie outside the root.
   */
  within?: string | undefined;
  /** Force the O_NOFOLLOW walk instead of openat2 (tests of the fallback). */
  walk?: boolean | undefined;
}

export interface OpenedImage {
  fd: number;
  direct: boolean;
}

function osError(err: unknown): NodeJS.ErrnoException {
  return err instanceof Error ? (err as NodeJS.ErrnoException) : new Error(String(err));
}

/** Refusals name the file as the caller gave it; an RPC caller gets EACCES/ENOENT as SPDK would. */
export function openServedFile(filename: string, t: OpenTarget): OpenedImage {
  let rel = filename;
  if (t.within !== undefined) {
    rel = path.relative(t.within, filename);
    if (path.isAbsolute(rel) || rel === '..' || rel.startsWith('../')) {
      throw new PathNotAllowedError(`${filename} is outside the allowed paths (${t.within})`);
    }
  }
  let got: OpenedFile;
  try {
    got = native().openFile(rel, { root: t.within, write: !t.readonly, direct: t.direct, walk: t.walk });
  } catch (err) {
    const e = osError(err);
    if (t.within !== undefined) {
      if (e.code === 'ENOENT') throw new PathNotFoundError(filename);
      // The real path had no symlink and no "..": meeting one now means the tree changed
      // between the check and the open (or someone is racing us). Never followed.
      if (e.code === 'EXDEV' || e.code === 'ELOOP' || e.code === 'ENOTDIR') {
        throw new PathNotAllowedError(
          `${filename} changed while it was opened (a symlink appeared on its path); refused, as it might lead outside ${t.within}`,
          { cause: e },
        );
      }
    }
    throw new SystemError(`cannot open ${describeOpenError(filename, e)}`, typeof e.errno === 'number' ? -e.errno : 5, { cause: e });
  }
  if (got.fd < 0) {
    const what = `${filename} is not a regular file or a block device (it is a ${got.kind})`;
    throw t.within !== undefined ? new PathNotAllowedError(what) : new InvalidBdevError(what);
  }
  if (t.within !== undefined && got.nlink > 1) {
    closeQuietly(got.fd);
    throw new PathNotAllowedError(
      `${filename} has ${got.nlink} hard links; a file under an --allow-path root must have only one, since another name of it may lie outside the root`,
    );
  }
  return { fd: got.fd, direct: got.direct };
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    /* nothing to release */
  }
}
