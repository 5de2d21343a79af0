// Logs for people and for machines: readable lines on a terminal (checked through a real
// pseudo-terminal), JSON lines elsewhere, --log-format forcing either, and the structured record
// that goes with the one "aionbd:" line of a failed start.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { explain, run, type RunResult } from '../helpers/run.js';
import { runInPty, stripAnsi } from '../helpers/pty.js';
import { BIN, requireBuilt } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';

const hasScript = tool('script');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmrf(d);
});

function dir(): string {
  const d = tmpDir('aionbd-logs-');
  dirs.push(d);
  return d;
}

/** The environment of a terminal user who has not turned colours off. */
function colourEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm' };
  delete env['NO_COLOR'];
  return env;
}

// A captive server: it starts, logs its start-up, runs `true` and stops, all on its own.
const SHORT_LIFE = ['serve', '--aio', 'd.img,size=1M', '--listen', 'unix:s.sock', '--no-rpc', '--run', 'true', '--log-level', 'info'];

const TIME = String.raw`\[\d\d:\d\d:\d\d\.\d{3}\]`;

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function withBusyPort<T>(fn: (port: number) => Promise<T>): Promise<T> {
  const blocker = net.createServer();
  await new Promise<void>((resolve, reject) => {
    blocker.once('error', reject);
    blocker.listen({ host: '127.0.0.1', port: 0 }, resolve);
  });
  try {
    const a = blocker.address();
    return await fn(a !== null && typeof a === 'object' ? a.port : 0);
  } finally {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
  }
}

describe.skipIf(!hasScript)('on a terminal', () => {
  it('each record is one readable line: time, level, message, fields; in colour', async () => {
    requireBuilt();
    const r = await runInPty(process.execPath, [BIN, ...SHORT_LIFE], { cwd: dir(), env: colourEnv(), timeoutMs: 30_000 });
    expect(r.code, explain(r)).toBe(0);
    const text = stripAnsi(r.stdout);
    expect(text).toMatch(new RegExp(`^${TIME} INFO: created sparse image bdev=d filename=d\\.img size=1048576$`, 'm'));
    expect(text).toMatch(new RegExp(`^${TIME} INFO: listening address=unix:s\\.sock$`, 'm'));
    expect(text).toMatch(new RegExp(`^${TIME} INFO: the --run command ended; stopping status=0$`, 'm'));
    expect(text, 'a JSON record on a terminal').not.toMatch(/^\{/m);
    expect(text, 'pid and hostname on every line').not.toMatch(/pid=|hostname=/);
    expect(r.stdout).toMatch(/\x1b\[32mINFO\x1b\[39m/); // the level in green
  }, 60_000);

  it('NO_COLOR: the same lines, without colour', async () => {
    requireBuilt();
    const r = await runInPty(process.execPath, [BIN, ...SHORT_LIFE], {
      cwd: dir(),
      env: { ...colourEnv(), NO_COLOR: '1' },
      timeoutMs: 30_000,
    });
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout).not.toContain('\x1b[3');
    expect(r.stdout).toMatch(new RegExp(`^${TIME} INFO: listening address=unix:s\\.sock$`, 'm'));
  }, 60_000);

  it('--log-format json: JSON lines even on a terminal', async () => {
    requireBuilt();
    const r = await runInPty(process.execPath, [BIN, ...SHORT_LIFE, '--log-format', 'json'], {
      cwd: dir(),
      env: colourEnv(),
      timeoutMs: 30_000,
    });
    expect(r.code, explain(r)).toBe(0);
    const records = jsonLines(r.stdout);
    expect(records.map((x) => x['msg'])).toEqual(expect.arrayContaining(['created sparse image', 'listening']));
    expect(records.find((x) => x['msg'] === 'listening')).toMatchObject({ level: 30, name: 'aionbd', address: 'unix:s.sock' });
  }, 60_000);

  it('a failed start is its one aionbd: line alone (the line is the record a person reads)', async () => {
    requireBuilt();
    await withBusyPort(async (port) => {
      const r = await runInPty(
        process.execPath,
        [BIN, 'serve', '--aio', 'd.img,size=1M', '--listen', `tcp://127.0.0.1:${port}`, '--no-rpc'],
        { cwd: dir(), env: colourEnv(), timeoutMs: 30_000 },
      );
      expect(r.code, explain(r)).toBe(1);
      expect(r.stdout).toBe(`aionbd: cannot listen on tcp://127.0.0.1:${port}: address already in use\n`);
    });
  }, 60_000);
});

describe('not on a terminal', () => {
  it('JSON lines by default; --log-format pretty forces readable lines, without colour', async () => {
    requireBuilt();
    const json = await run(process.execPath, [BIN, ...SHORT_LIFE], { cwd: dir(), env: colourEnv(), timeoutMs: 30_000 });
    expect(json.code, explain(json)).toBe(0);
    expect(jsonLines(json.stderr).map((x) => x['msg'])).toContain('listening');

    const pretty = await run(process.execPath, [BIN, ...SHORT_LIFE, '--log-format', 'pretty'], {
      cwd: dir(),
      env: colourEnv(),
      timeoutMs: 30_000,
    });
    expect(pretty.code, explain(pretty)).toBe(0);
    expect(pretty.stderr).toMatch(new RegExp(`^${TIME} INFO: listening address=unix:s\\.sock$`, 'm'));
    expect(pretty.stderr).not.toContain('\x1b[');
  }, 60_000);

  it('--log-format takes json or pretty only (exit 2)', async () => {
    requireBuilt();
    const r = await run(process.execPath, [BIN, 'serve', '--log-format', 'xml'], { cwd: dir(), timeoutMs: 20_000 });
    expect(r.code, explain(r)).toBe(2);
    expect(r.stderr).toMatch(/^aionbd: option '--log-format <format>' argument 'xml' is invalid\. Allowed choices are json, pretty\.\n$/);
  }, 30_000);
});

describe('a failed start in JSON: a structured record, then the aionbd: line', () => {
  function failure(r: RunResult): { record: Record<string, unknown>; line: string } {
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    expect(lines, explain(r)).toHaveLength(2);
    return { record: JSON.parse(lines[0] ?? '') as Record<string, unknown>, line: lines[1] ?? '' };
  }

  it('a runtime failure (exit 1): level 50 with the stable code and the same message', async () => {
    requireBuilt();
    await withBusyPort(async (port) => {
      const cwd = dir();
      const r = await run(process.execPath, [BIN, 'serve', '--aio', 'd.img,size=1M', '--listen', `tcp://127.0.0.1:${port}`, '--no-rpc'], {
        cwd,
        timeoutMs: 20_000,
      });
      expect(r.code, explain(r)).toBe(1);
      const msg = `cannot listen on tcp://127.0.0.1:${port}: address already in use`;
      const { record, line } = failure(r);
      expect(record).toMatchObject({ level: 50, name: 'aionbd', code: 'AIONBD_LISTEN', exitCode: 1, msg });
      expect(line).toBe(`aionbd: ${msg}`);
      expect(fs.readdirSync(cwd), 'the failed start left files').toEqual([]);
    });
  }, 30_000);

  it('bad usage found by serve (exit 2): AIONBD_USAGE', async () => {
    requireBuilt();
    const r = await run(process.execPath, [BIN, 'serve', '--aio', 'd.img,size=1M,colour=blue'], { cwd: dir(), timeoutMs: 20_000 });
    expect(r.code, explain(r)).toBe(2);
    const { record, line } = failure(r);
    expect(record).toMatchObject({ level: 50, code: 'AIONBD_USAGE', exitCode: 2 });
    expect(line).toBe(`aionbd: ${String(record['msg'])}`);
    expect(line).toContain('unknown key "colour"');
  }, 30_000);

  it('a file that cannot be created carries its errno', async () => {
    requireBuilt();
    const cwd = dir();
    fs.writeFileSync(path.join(cwd, 'plain'), '');
    const r = await run(process.execPath, [BIN, 'serve', '--aio', 'plain/d.img,size=1M', '--listen', 'unix:s.sock', '--no-rpc'], {
      cwd,
      timeoutMs: 20_000,
    });
    expect(r.code, explain(r)).toBe(1);
    const { record } = failure(r);
    expect(record).toMatchObject({ level: 50, code: 'AIONBD_SYSTEM', exitCode: 1, errno: 20 }); // ENOTDIR
  }, 30_000);
});
