// lvol snapshots and clones as an operator uses them: `aionbd rpc` with rpc.py's forms, data
// written with nbdsh and read back whole with nbdcopy, byte for byte after writes to each side
// and again after save_config and a restart with --config; then a resize that new connections
// see, and a shrink refused while a client is connected unless forced.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pattern } from '../bdev/conformance.js';
import { run } from '../helpers/run.js';
import { BIN, startServer, stopAllServers, type TestServer } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { nbdshEnv, nbdshTool, tool } from '../helpers/tools.js';

const MiB = 2 ** 20;
const have = nbdshTool() && tool('nbdcopy', 'nbdinfo');

describe.skipIf(!have)('lvol snapshots, clones and resize through aionbd rpc and real clients', () => {
  let dir: string;
  let srv: TestServer;
  /** What the first test leaves in vol. */
  let volData = Buffer.alloc(0);
  const rpcSock = (): string => `${dir}/rpc.sock`;

  async function rpc(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
    const r = await run(process.execPath, [BIN, 'rpc', '-s', rpcSock(), ...args], { timeoutMs: 20_000 });
    return { code: r.code, out: r.stdout.trim(), err: r.stderr.trim() };
  }
  async function ok(...args: string[]): Promise<string> {
    const r = await rpc(...args);
    expect(r.code, `aionbd rpc ${args.join(' ')}: ${r.err}`).toBe(0);
    return r.out;
  }
  const serve = (args: string[], exports: number): Promise<TestServer> =>
    startServer({ rawArgs: ['--listen', `unix:${dir}/nbd.sock`, '--rpc', rpcSock(), ...args, '--log-level', 'warn'], exports });

  /** Writes `data` at `offset` of an export with nbdsh; resolves with nbdsh's exit code. */
  async function put(name: string, offset: number, data: Buffer): Promise<number | null> {
    const f = `${dir}/put.bin`;
    fs.writeFileSync(f, data);
    const r = await run('nbdsh', ['-u', srv.uri(name), '-c', `h.pwrite(open(${JSON.stringify(f)}, 'rb').read(), ${offset})`], {
      timeoutMs: 30_000,
      env: nbdshEnv() ?? undefined,
    });
    return r.code;
  }
  /** The whole export, read with nbdcopy. */
  async function whole(name: string): Promise<Buffer> {
    const f = `${dir}/${name}.out`;
    const r = await run('nbdcopy', [srv.uri(name), f], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    const b = fs.readFileSync(f);
    fs.rmSync(f);
    return b;
  }
  async function size(name: string): Promise<number> {
    const r = await run('nbdinfo', ['--size', srv.uri(name)], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    return Number(r.stdout.trim());
  }

  beforeAll(() => {
    dir = tmpDir();
  });
  afterAll(async () => {
    await stopAllServers();
    rmrf(dir);
  });

  it('snapshot and clone: each side keeps its own writes, the snapshot stays read-only, across save_config and --config', async () => {
    const img = `${dir}/base.img`;
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 64 * MiB);
    srv = await serve(['--aio', `${img},name=base`], 1);
    await ok('nbd_export_remove', 'base');
    await ok('bdev_lvol_create_lvstore', 'base', 'lvs0', '-c', '1M');
    await ok('bdev_lvol_create', 'vol', '8', '-l', 'lvs0', '-t');
    await ok('nbd_export_add', 'lvs0/vol', '-n', 'vol');

    const s = Buffer.alloc(8 * MiB);
    const w = (buf: Buffer, at: number, data: Buffer): void => {
      data.copy(buf, at);
    };
    const r1 = pattern(1536 * 1024, 1),
      r2 = pattern(MiB, 2);
    expect(await put('vol', 512 * 1024, r1)).toBe(0);
    expect(await put('vol', 5 * MiB, r2)).toBe(0);
    w(s, 512 * 1024, r1);
    w(s, 5 * MiB, r2);

    const snapUuid = await ok('bdev_lvol_snapshot', 'lvs0/vol', 'snap'); // printed bare, as rpc.py prints strings
    expect(snapUuid).toMatch(/^[0-9a-f-]{36}$/);
    await ok('bdev_lvol_clone', 'lvs0/snap', 'clone');
    await ok('nbd_export_add', 'lvs0/snap', '-n', 'snap', '-r');
    await ok('nbd_export_add', 'lvs0/clone', '-n', 'clone');
    // Unaligned writes across cluster boundaries: each copies its clusters first.
    const r3 = pattern(256 * 1024 + 513, 3),
      r4 = pattern(8192 + 7, 4);
    expect(await put('vol', MiB - 100, r3)).toBe(0);
    expect(await put('clone', 6 * MiB - 4096, r4)).toBe(0);
    const vol = Buffer.from(s),
      clone = Buffer.from(s);
    w(vol, MiB - 100, r3);
    w(clone, 6 * MiB - 4096, r4);
    const check = async (): Promise<void> => {
      expect((await whole('snap')).equals(s)).toBe(true);
      expect((await whole('vol')).equals(vol)).toBe(true);
      expect((await whole('clone')).equals(clone)).toBe(true);
    };
    await check();

    // The snapshot refuses writes, even through an export that would take them.
    expect(await put('snap', 0, pattern(4096, 5))).not.toBe(0);
    await ok('nbd_export_remove', 'snap');
    await ok('nbd_export_add', 'lvs0/snap', '-n', 'snap');
    expect(await put('snap', 0, pattern(4096, 5))).not.toBe(0);
    const del = await rpc('bdev_lvol_delete', 'lvs0/snap');
    expect(del.code).toBe(1);
    expect(del.err).toMatch(
      /^aionbd: Device or resource busy: bdev "lvs0\/snap" is in use: it has clones \(lvs0\/vol, lvs0\/clone\): delete them, or make each independent/,
    );
    const lvols = JSON.parse(await ok('bdev_lvol_get_lvols', '-l', 'lvs0')) as { name: string; is_snapshot: boolean; is_clone: boolean }[];
    expect(lvols.map((l) => [l.name, l.is_snapshot, l.is_clone])).toEqual([
      ['vol', false, true],
      ['snap', true, false],
      ['clone', false, true],
    ]);

    fs.writeFileSync(`${dir}/config.json`, await ok('save_config'));
    expect((await srv.stop('SIGTERM')).code).toBe(0);
    srv = await serve(['--config', `${dir}/config.json`], 3);
    await check();
    volData = vol;
  }, 60_000);

  it('bdev_lvol_resize: new connections see the new size; shrinking under a connected client needs --force', async () => {
    expect(await size('vol')).toBe(8 * MiB);
    await ok('bdev_lvol_resize', 'lvs0/vol', '16');
    expect(await size('vol')).toBe(16 * MiB);
    // A client that stays connected, told 16 MiB.
    const held = spawn('nbdsh', ['-u', srv.uri('vol'), '-c', 'import sys\nprint(h.get_size(), flush=True)\nsys.stdin.read()'], {
      env: nbdshEnv() ?? undefined,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      const told = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('nbdsh did not connect')), 20_000);
        held.stdout.once('data', (d: Buffer) => {
          clearTimeout(t);
          resolve(d.toString().trim());
        });
      });
      expect(Number(told)).toBe(16 * MiB);
      const refused = await rpc('bdev_lvol_resize', 'lvs0/vol', '4');
      expect(refused.code).toBe(1);
      expect(refused.err).toContain('connected clients were told it has 16777216 bytes; shrinking it to 4194304');
      expect(await size('vol')).toBe(16 * MiB);
      await ok('bdev_lvol_resize', 'lvs0/vol', '4', '--force');
      expect(await size('vol')).toBe(4 * MiB);
    } finally {
      held.stdin.end();
      await new Promise((resolve) => {
        held.once('exit', resolve);
        setTimeout(resolve, 10_000).unref();
      });
    }
    // Below the cut the data is what it was.
    expect((await whole('vol')).equals(volData.subarray(0, 4 * MiB))).toBe(true);
  }, 60_000);
});
