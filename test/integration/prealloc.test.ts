// --aio FILE,size=S,prealloc=sparse|falloc|full: what each mode leaves allocated on disk (stat's
// block count, as du reads it), the progress of a full write, and what a failed start leaves.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { explain, run } from '../helpers/run.js';
import { runInPty, stripAnsi } from '../helpers/pty.js';
import { BIN, requireBuilt } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';

const MiB = 2 ** 20;
const SIZE = 192 * MiB;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmrf(d);
});
function dir(): string {
  const d = tmpDir('aionbd-prealloc-');
  dirs.push(d);
  return d;
}

/** Bytes the file system has allocated to the file (st_blocks is in 512-byte units, whatever the block size). */
function allocated(file: string): number {
  return fs.statSync(file).blocks * 512;
}

/** `du -B1 FILE`, as a user checks it. */
async function du(file: string): Promise<number> {
  const r = await run('du', ['-B1', file], { timeoutMs: 10_000 });
  expect(r.code, explain(r)).toBe(0);
  return Number(r.stdout.split('\t')[0]);
}

function serveOnce(cwd: string, spec: string, extra: string[] = []): ReturnType<typeof run> {
  requireBuilt();
  // Captive: the server creates the image, serves it to `true`, and stops.
  return run(
    process.execPath,
    [BIN, 'serve', '--aio', spec, '--listen', 'unix:s.sock', '--no-rpc', '--run', 'true', '--log-level', 'info', ...extra],
    { cwd, timeoutMs: 120_000 },
  );
}

describe('prealloc= of a new image', () => {
  it('sparse (the default) allocates nothing; falloc and full allocate every byte', async () => {
    const cwd = dir();
    const got: Record<string, number> = {};
    for (const mode of ['default', 'sparse', 'falloc', 'full']) {
      const r = await serveOnce(cwd, `${mode}/d.img,size=${SIZE}${mode === 'default' ? '' : `,prealloc=${mode}`}`);
      expect(r.code, explain(r)).toBe(0);
      const file = path.join(cwd, mode, 'd.img');
      expect(fs.statSync(file).size).toBe(SIZE);
      got[mode] = allocated(file);
      expect(await du(file)).toBe(got[mode]);
    }
    expect(got['default']).toBeLessThan(MiB);
    expect(got['sparse']).toBeLessThan(MiB);
    expect(got['falloc']).toBeGreaterThanOrEqual(SIZE);
    expect(got['full']).toBeGreaterThanOrEqual(SIZE);
  }, 180_000);

  it('full, not on a terminal: plain progress lines, at most ten, ending at 100%', async () => {
    const cwd = dir();
    const r = await serveOnce(cwd, `d.img,size=${SIZE},prealloc=full`);
    expect(r.code, explain(r)).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('aionbd: writing'));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThanOrEqual(10);
    expect(lines.at(-1)).toBe(`aionbd: writing d.img: 100% (${SIZE / MiB}M of ${SIZE / MiB}M)`);
    expect(r.stderr).toContain('"msg":"created preallocated image"');
  }, 120_000);

  it.skipIf(!tool('script'))(
    'full, on a terminal: a progress bar (cli-progress) redrawn in place',
    async () => {
      requireBuilt();
      const cwd = dir();
      const r = await runInPty(
        process.execPath,
        [BIN, 'serve', '--aio', `d.img,size=${SIZE},prealloc=full`, '--listen', 'unix:s.sock', '--no-rpc', '--run', 'true'],
        { cwd, timeoutMs: 120_000 },
      );
      expect(r.code, explain(r)).toBe(0);
      expect(stripAnsi(r.stdout)).toMatch(new RegExp(`aionbd: writing d\\.img =+ 100% \\| ${SIZE / MiB}M of ${SIZE / MiB}M \\| ETA 0s`));
      expect(r.stdout, 'redrawn in place (cursor to column 1), not line after line').toContain('\x1b[1G');
      expect(r.stdout).not.toContain('aionbd: writing d.img: 100%');
    },
    120_000,
  );

  it('an existing file is served as it is, with a warning', async () => {
    const cwd = dir();
    fs.writeFileSync(path.join(cwd, 'old.img'), Buffer.alloc(MiB, 1));
    const before = allocated(path.join(cwd, 'old.img'));
    const r = await serveOnce(cwd, `old.img,size=${SIZE},prealloc=full`);
    expect(r.code, explain(r)).toBe(0);
    expect(r.stderr).toContain('the file exists: served as it is, not preallocated');
    expect(fs.statSync(path.join(cwd, 'old.img')).size).toBe(MiB);
    expect(allocated(path.join(cwd, 'old.img'))).toBe(before);
  }, 60_000);

  it('a start that fails after preallocating removes the image and the directories it made', async () => {
    const cwd = dir();
    const blocker = net.createServer();
    await new Promise<void>((resolve, reject) => {
      blocker.once('error', reject);
      blocker.listen({ host: '127.0.0.1', port: 0 }, resolve);
    });
    try {
      const a = blocker.address();
      const port = a !== null && typeof a === 'object' ? a.port : 0;
      requireBuilt();
      const r = await run(
        process.execPath,
        [BIN, 'serve', '--aio', `new/dir/d.img,size=${16 * MiB},prealloc=falloc`, '--listen', `tcp://127.0.0.1:${port}`, '--no-rpc'],
        { cwd, timeoutMs: 30_000 },
      );
      expect(r.code, explain(r)).toBe(1);
      expect(fs.readdirSync(cwd), 'left behind').toEqual([]);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  }, 60_000);

  const bad: [string, string][] = [
    ['prealloc without size=', 'x.img,prealloc=full'],
    ['an unknown mode', 'x.img,size=1M,prealloc=thick'],
    ['prealloc with no value', 'x.img,size=1M,prealloc='],
  ];
  for (const [what, spec] of bad) {
    it(`bad usage, exit 2, nothing created: ${what}`, async () => {
      const cwd = dir();
      requireBuilt();
      const r = await run(process.execPath, [BIN, 'serve', '--aio', spec, '--no-rpc'], { cwd, timeoutMs: 20_000 });
      expect(r.code, explain(r)).toBe(2);
      expect(r.stderr).toMatch(/^aionbd: bad --aio .*prealloc/m);
      expect(fs.readdirSync(cwd)).toEqual([]);
    }, 30_000);
  }
});
