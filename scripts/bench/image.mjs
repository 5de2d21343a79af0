// A fresh image for every comparison, written by a stated method. How an image was written
// changes this disk's speed by up to 2x (docs/performance.notes.md): blocks
// written with O_DIRECT serve 4k random writes about twice as fast as blocks written through
// the page cache, and the slow state fades as a benchmark rewrites them. So no comparison ever
// runs on an image an earlier one rewrote, and every report says which kind it measured.
import fs from 'node:fs';
import path from 'node:path';
import { startChild } from './procs.mjs';

/**
 * @typedef {object} Fill
 * @property {string} id
 * @property {string} label
 * @property {string} description
 * @property {string[]} fioArgs     how fio writes the whole file
 * @property {boolean} dropCache    drop the file's pages from the page cache afterwards
 */

/** @type {Readonly<Record<string, Fill>>} */
export const FILLS = Object.freeze({
  direct: {
    id: 'direct',
    label: 'O_DIRECT-filled image',
    description: 'written once with O_DIRECT (fio libaio --direct=1, 1 MiB sequential, QD8): the disk at its fastest',
    fioArgs: ['--ioengine=libaio', '--direct=1', '--iodepth=8'],
    dropCache: false,
  },
  cached: {
    id: 'cached',
    label: 'page-cache-filled image',
    description:
      'written once through the page cache (fio psync --direct=0, 1 MiB sequential, fsync at the end), then its pages ' +
      'dropped from the cache: how cp, dd and qemu-img convert leave an image, and slower for 4k random writes on this disk',
    fioArgs: ['--ioengine=psync', '--direct=0', '--end_fsync=1'],
    dropCache: true,
  },
});

export const FILL_IDS = Object.freeze(Object.keys(FILLS));

const FILL_TIMEOUT_MS = 600_000;

/**
 * @param {string} cmd
 * @param {string[]} args
 * @param {string} dir
 * @param {string} what
 */
async function runTool(cmd, args, dir, what) {
  const child = startChild(cmd, args, { cwd: dir });
  const timer = setTimeout(() => {
    void child.stop(2_000);
  }, FILL_TIMEOUT_MS);
  const st = await child.exited;
  clearTimeout(timer);
  if (st.code !== 0) throw new Error(`${what} failed: ${(child.stderr() + child.stdout()).trim().slice(-1000)}`);
}

/**
 * Creates `image` anew (never reusing blocks of a file a benchmark rewrote: the old file is
 * unlinked first) and writes all of it by `fill`'s method.
 * @param {Fill} fill
 * @param {string} image
 * @param {number} size
 * @param {string} dir   fio's working directory
 */
export async function freshImage(fill, image, size, dir) {
  fs.rmSync(image, { force: true });
  await runTool(
    'fio',
    ['--name=fill', `--filename=${image}`, `--size=${size}`, '--rw=write', '--bs=1M', ...fill.fioArgs, '--output-format=terse'],
    dir,
    `filling ${path.basename(image)} (${fill.id})`,
  );
  // GNU dd's documented way to drop one file's cached pages: fdatasync, then
  // posix_fadvise(DONTNEED) over the whole file; unprivileged and leaves other caches alone.
  if (fill.dropCache) {
    await runTool(
      'dd',
      ['if=/dev/null', `of=${image}`, 'oflag=nocache', 'conv=notrunc,fdatasync', 'count=0', 'status=none'],
      dir,
      `dropping ${path.basename(image)} from the page cache`,
    );
  }
  const got = fs.statSync(image).size;
  if (got !== size) throw new Error(`${image} is ${got} bytes after filling, not ${size}`);
}
