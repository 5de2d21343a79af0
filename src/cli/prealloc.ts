// prealloc= of --aio: how a new image's blocks are allocated when size= creates it.
//   sparse  nothing is allocated (the bdev creates the file; first writes allocate, slowly)
//   falloc  the blocks are reserved at once with fallocate(2): fast, and ENOSPC cannot come later
//   full    every byte is written with zeroes: slow, but no write to it ever allocates again
// Only a file that does not exist is preallocated; an existing one is served as it is.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SystemError, describeOpenError } from '../errors.js';
import type { Logger } from '../log.js';
import { native, FileOp } from '../native.js';
import { formatSize } from '../util/size.js';

export const PREALLOC_MODES = ['sparse', 'falloc', 'full'] as const;
export type Prealloc = (typeof PREALLOC_MODES)[number];

const E = os.constants.errno;

/** Bytes written per step of prealloc=full, each followed by fdatasync so the progress shown is the disk's. */
const FULL_STEP = 64 * 2 ** 20;

/** How far a prealloc=full has got, for a person watching. */
export interface Progress {
  update(done: number): void;
  stop(): void;
}

function fileOp(op: FileOp, fd: number, offset: number, length: number): Promise<number> {
  return new Promise((resolve) => {
    native().fileOp(op, fd, offset, length, resolve);
  });
}

function systemError(what: string, errno: number, cause?: unknown): SystemError {
  return new SystemError(what, errno, cause === undefined ? undefined : { cause });
}

/**
 * Creates `file` (and its missing directories) with `size` bytes allocated as `mode` says. On
 * failure the file is left for the caller to remove (the CLI's CreatedFiles removes what a failed
 * start made, directories included).
 */
export async function createPreallocated(
  file: string,
  size: number,
  mode: 'falloc' | 'full',
  log: Logger,
  progress: (size: number) => Promise<Progress>,
): Promise<void> {
  makeParents(path.dirname(path.resolve(file)));
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw systemError(`cannot create ${describeOpenError(file, e)}`, typeof e.errno === 'number' ? -e.errno : 5, e);
  }
  const t0 = Date.now();
  try {
    if (mode === 'falloc') await allocate(file, fd, size);
    else await writeZeroes(file, fd, size, await progress(size));
  } finally {
    fs.closeSync(fd);
  }
  log.info({ filename: file, size, prealloc: mode, ms: Date.now() - t0 }, 'created preallocated image');
}

async function allocate(file: string, fd: number, size: number): Promise<void> {
  const rc = await fileOp(FileOp.Allocate, fd, 0, size);
  if (rc === 0) return;
  const errno = -rc;
  if (errno === E.EOPNOTSUPP || errno === E.ENOSYS) {
    throw systemError(`cannot preallocate ${file}: its file system has no fallocate (use prealloc=full, or sparse)`, errno);
  }
  if (errno === E.ENOSPC) throw systemError(`cannot preallocate ${file}: no space left for ${formatSize(size)}`, errno);
  throw systemError(`cannot preallocate ${file}: fallocate failed with errno ${errno}`, errno);
}

async function writeZeroes(file: string, fd: number, size: number, progress: Progress): Promise<void> {
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(FULL_STEP, size - done);
      let rc = await fileOp(FileOp.WriteZeroes, fd, done, n);
      if (rc === 0) rc = await fileOp(FileOp.Fdatasync, fd, 0, 0);
      if (rc < 0) {
        const why = -rc === E.ENOSPC ? 'no space left' : `errno ${-rc}`;
        throw systemError(`cannot preallocate ${file}: writing zeroes at ${done} failed: ${why}`, -rc);
      }
      done += n;
      progress.update(done);
    }
  } finally {
    progress.stop();
  }
}

/** mkdir -p one component at a time (Node's recursive mkdir can loop where a parent refuses children, as /proc does). */
function makeParents(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d) && path.dirname(d) !== d; d = path.dirname(d)) missing.push(d);
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw systemError(`cannot create ${describeOpenError(d, e)}`, typeof e.errno === 'number' ? -e.errno : 5, e);
    }
  }
}

const mib = (n: number): string => `${Math.floor(n / 2 ** 20)}M`;

/**
 * Progress of writing `file`: a bar that redraws in place on a terminal (cli-progress), else, if
 * `lines`, a plain line at every tenth (a log file or CI output gets at most ten lines, not a
 * bar's redraws).
 */
export function progressFor(
  file: string,
  lines: boolean,
  stderr: NodeJS.WriteStream = process.stderr,
): (size: number) => Promise<Progress> {
  return async (size) => {
    if (stderr.isTTY) {
      const { SingleBar } = await import('cli-progress'); // only where a bar is drawn
      const bar = new SingleBar({
        stream: stderr,
        format: `aionbd: writing ${file} {bar} {percentage}% | {done} of {size} | ETA {eta_formatted}`,
        hideCursor: true,
        clearOnComplete: false,
      });
      bar.start(size, 0, { done: mib(0), size: formatSize(size) });
      return {
        update: (done) => {
          bar.update(done, { done: mib(done) });
        },
        stop: () => {
          bar.stop();
        },
      };
    }
    let shown = 0;
    return {
      update: (done) => {
        const tenth = Math.floor((done * 10) / size);
        if (!lines || tenth <= shown) return;
        shown = tenth;
        stderr.write(`aionbd: writing ${file}: ${Math.floor((done * 100) / size)}% (${mib(done)} of ${formatSize(size)})\n`);
      },
      stop: () => undefined,
    };
  };
}
