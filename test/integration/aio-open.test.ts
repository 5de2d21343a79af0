// `aionbd serve --aio` with files it must refuse (not a regular file or block device, sizes it
// cannot serve): each fails at once,
// with one line a user reads, exit 1 or 2 and no stack trace, and leaves nothing it created.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { explain, run, type RunResult } from '../helpers/run.js';
import { BIN, requireBuilt } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmrf(d);
});

/** `aionbd serve ARGS` in a fresh directory, on a unix listener and RPC socket of its own. */
async function serve(args: string[], prepare?: (dir: string) => void): Promise<RunResult & { dir: string; ms: number }> {
  requireBuilt();
  const dir = tmpDir('aionbd-open-');
  dirs.push(dir);
  prepare?.(dir);
  const t0 = Date.now();
  const r = await run(
    process.execPath,
    [BIN, 'serve', '--listen', `unix:${path.join(dir, 'n.sock')}`, '--rpc', path.join(dir, 'r.sock'), ...args],
    { cwd: dir, timeoutMs: 15_000 },
  );
  return { ...r, dir, ms: Date.now() - t0 };
}

/** What a user reads: stderr without pino's JSON records. */
function humanLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{"level"'));
}

function failsWithOneLine(r: RunResult & { ms: number }, line: RegExp): void {
  expect(r.timedOut, explain(r)).toBe(false);
  expect([1, 2], explain(r)).toContain(r.code);
  expect(humanLines(r.stderr), explain(r)).toEqual([expect.stringMatching(line)]);
  expect(r.stderr).not.toMatch(/O_DIRECT|RangeError|\n\s+at /);
  expect(r.ms).toBeLessThan(10_000);
}

describe('serve --aio refuses what it cannot serve, at once', () => {
  it('a FIFO: no wait for a writer, one line', async () => {
    const r = await serve(['--aio', 'f,readonly'], (d) => {
      execFileSync('mkfifo', [path.join(d, 'f')]);
    });
    failsWithOneLine(r, /^aionbd: f is not a regular file or a block device \(it is a fifo\)$/);
  });

  it('/dev/null: judged for what it is, not as an O_DIRECT problem', async () => {
    failsWithOneLine(
      await serve(['--aio', '/dev/null,readonly']),
      /^aionbd: \/dev\/null is not a regular file or a block device \(it is a character device\)$/,
    );
  });

  it('--data-dir under /proc: fails at once instead of spinning in mkdir', async () => {
    failsWithOneLine(await serve(['--data-dir', '/proc/nope']), /^aionbd: cannot create \/proc\/nope: no such file or directory$/);
  });

  it('size=100: refused before the file is made, and nothing is left', async () => {
    const r = await serve(['--aio', 'new/new.img,size=100']);
    failsWithOneLine(r, /^aionbd: .*100.*/);
    expect(fs.existsSync(path.join(r.dir, 'new'))).toBe(false);
  });

  it('bs=4G and bs=12G: one line, no RangeError', async () => {
    for (const bs of ['4G', '12G']) {
      const r = await serve(['--aio', `big.img,bs=${bs}`], (d) => {
        fs.closeSync(fs.openSync(path.join(d, 'big.img'), 'w'));
        fs.truncateSync(path.join(d, 'big.img'), 16 * 2 ** 30);
      });
      failsWithOneLine(r, /^aionbd: .*(block size|bs).*/);
    }
  });
});
