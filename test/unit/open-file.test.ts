// native openFile (native/open_file.cc) through openServedFile: resolution beneath a root by
// openat2 and by the O_NOFOLLOW walk (the fallback for kernels before 5.6), judged by the fd.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openServedFile } from '../../src/modules/aio/open_file.js';
import { InvalidBdevError, PathNotAllowedError, PathNotFoundError } from '../../src/errors.js';
import { native } from '../../src/native.js';
import { startSwapper } from '../helpers/swapper.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';

const MiB = 2 ** 20;

let dir: string, root: string;
beforeAll(() => {
  dir = tmpDir();
  root = path.join(dir, 'root');
  fs.mkdirSync(path.join(root, 'sub'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'out'));
  fs.writeFileSync(path.join(root, 'in.img'), Buffer.alloc(MiB));
  fs.writeFileSync(path.join(dir, 'out', 'secret.img'), Buffer.alloc(2 * MiB));
  fs.symlinkSync(path.join(dir, 'out'), path.join(root, 'esc'));
  fs.symlinkSync('in.img', path.join(root, 'rel.img'));
  fs.linkSync(path.join(dir, 'out', 'secret.img'), path.join(root, 'hard.img'));
  execFileSync('mkfifo', [path.join(root, 'fifo')]);
});
afterAll(() => {
  rmrf(dir);
});

function sizeOf(fd: number): number {
  const s = fs.fstatSync(fd).size;
  fs.closeSync(fd);
  return s;
}

for (const walk of [false, true]) {
  describe(walk ? 'beneath a root, by the O_NOFOLLOW walk' : 'beneath a root, by openat2', () => {
    const open = (rel: string, readonly = true): number =>
      openServedFile(path.join(root, rel), { readonly, direct: true, within: root, walk }).fd;

    it('opens a file under the root, O_DIRECT set on the fd it judged', () => {
      const { fd, direct } = openServedFile(path.join(root, 'in.img'), { readonly: false, direct: true, within: root, walk });
      expect(direct).toBe(true);
      const flags = parseInt(/flags:\s+(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0', 8);
      expect(flags & fs.constants.O_DIRECT).toBe(fs.constants.O_DIRECT);
      expect(flags & fs.constants.O_NONBLOCK).toBe(0);
      expect(sizeOf(fd)).toBe(MiB);
    });

    it('never follows a symlink on the way, even one that stays inside', () => {
      expect(() => open('esc/secret.img')).toThrow(/changed while it was opened/);
      expect(() => open('rel.img')).toThrow(PathNotAllowedError);
    });

    it('refuses what lies outside the root and what is missing', () => {
      expect(() => openServedFile(path.join(dir, 'out', 'secret.img'), { readonly: true, direct: true, within: root, walk })).toThrow(
        /outside the allowed paths/,
      );
      expect(() => open('missing.img')).toThrow(PathNotFoundError);
    });

    it('refuses a FIFO at once (never waiting for a writer), and a directory', () => {
      const t0 = Date.now();
      expect(() => open('fifo')).toThrow(/fifo is not a regular file or a block device \(it is a fifo\)/);
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(() => open('sub')).toThrow(/not a regular file or a block device \(it is a directory\)/);
    });

    it('refuses a file with a second hard link (it may be a name of a file outside)', () => {
      expect(() => open('hard.img')).toThrow(/has 2 hard links/);
    });
  });
}

describe("the operator's own paths (no root)", () => {
  it('follow symlinks and take hard links, but still refuse what is not a file or block device, without blocking', () => {
    expect(sizeOf(openServedFile(path.join(root, 'esc', 'secret.img'), { readonly: true, direct: true }).fd)).toBe(2 * MiB);
    expect(sizeOf(openServedFile(path.join(root, 'hard.img'), { readonly: true, direct: true }).fd)).toBe(2 * MiB);
    expect(() => openServedFile(path.join(root, 'fifo'), { readonly: true, direct: true })).toThrow(InvalidBdevError);
    expect(() => openServedFile('/dev/null', { readonly: false, direct: true })).toThrow(
      /\/dev\/null is not a regular file or a block device \(it is a character device\)/,
    );
  });
});

describe('a directory swapped with a symlink to outside while opening beneath the root', () => {
  for (const walk of [false, true]) {
    it(`never yields the outside file (${walk ? 'walk' : 'openat2'})`, async () => {
      const d = path.join(dir, `race-${String(walk)}`);
      fs.mkdirSync(path.join(d, 'root', 'd'), { recursive: true });
      fs.mkdirSync(path.join(d, 'out'));
      fs.writeFileSync(path.join(d, 'root', 'd', 'x.img'), Buffer.alloc(4096));
      fs.writeFileSync(path.join(d, 'out', 'x.img'), Buffer.alloc(8192));
      fs.symlinkSync(path.join(d, 'out'), path.join(d, 'root', 'link'));
      const swapper = await startSwapper(path.join(d, 'root', 'd'), path.join(d, 'root', 'link'), 2);
      let inside = 0,
        outside = 0,
        refused = 0;
      const deadline = Date.now() + 2000;
      for (let i = 0; i < 1_000_000 && Date.now() < deadline; i++) {
        let fd: number;
        try {
          fd = native().openFile('d/x.img', { root: path.join(d, 'root'), write: false, direct: false, walk }).fd;
        } catch {
          refused++;
          continue;
        }
        if (sizeOf(fd) === 4096) inside++;
        else outside++;
      }
      await swapper.done();
      expect(inside).toBeGreaterThan(10);
      expect(refused).toBeGreaterThan(10);
      expect(outside).toBe(0);
    }, 30_000);
  }
});
