// QEMU's NBD client: convert into and out of an export, compare, and map its holes.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/run.js';
import { startServer, stopAllServers, type TestServer } from '../helpers/server.js';
import { tool } from '../helpers/tools.js';

const MiB = 1 << 20;
const have = tool('qemu-img', 'qemu-io', 'nbdinfo');

describe.skipIf(!have)('qemu-img convert, compare and map', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ aio: ['d.img,name=d0,size=64M'] });
  }, 30_000);
  afterAll(async () => {
    await stopAllServers();
  });

  it('converts a sparse image in and out, byte-identical, holes kept', async () => {
    const src = srv.file('src.raw');
    fs.writeFileSync(src, Buffer.alloc(0));
    fs.truncateSync(src, 64 * MiB);
    const fd = fs.openSync(src, 'r+');
    const data = Buffer.alloc(3 * MiB);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
    fs.writeSync(fd, data, 0, data.length, 20 * MiB);
    fs.writeSync(fd, data.subarray(0, 4096), 0, 4096, 60 * MiB + 512);
    fs.closeSync(fd);
    const into = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, srv.uri('d0')], { timeoutMs: 60_000 });
    expect(into.code, into.stderr).toBe(0);
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, srv.uri('d0')], { timeoutMs: 60_000 });
    expect(cmp.code, cmp.stdout + cmp.stderr).toBe(0);
    expect(cmp.stdout).toMatch(/Images are identical/);
    const map = await run('qemu-img', ['map', '--output=json', '-f', 'raw', srv.uri('d0')], { timeoutMs: 60_000 });
    const extents = JSON.parse(map.stdout) as { start: number; length: number; data: boolean }[];
    const dataBytes = extents.filter((e) => e.data).reduce((n, e) => n + e.length, 0);
    expect(dataBytes).toBeGreaterThanOrEqual(3 * MiB);
    expect(dataBytes).toBeLessThan(8 * MiB); // the rest stayed holes
    const out = srv.file('out.raw');
    const back = await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', srv.uri('d0'), out], { timeoutMs: 60_000 });
    expect(back.code, back.stderr).toBe(0);
    expect(fs.readFileSync(out).equals(fs.readFileSync(src))).toBe(true);
    expect(fs.statSync(out).blocks * 512).toBeLessThan(16 * MiB);
  }, 120_000);

  it('nbdinfo --map shows the real holes, and qemu-io works at odd offsets and lengths', async () => {
    const fresh = await startServer({ aio: ['m.img,name=m,size=16M'] });
    const w = await run(
      'qemu-io',
      [
        '-f',
        'raw',
        '-c',
        'write -P 0x61 3M 1M',
        '-c',
        'write -P 0x62 12345 777',
        '-c',
        'read -P 0x62 12345 777',
        '-c',
        'read -P 0 12344 1',
        '-c',
        'read -P 0 13122 1',
        '-c',
        'write -z 3145729 100',
        '-c',
        'read -P 0 3145729 100',
        '-c',
        'read -P 0x61 3145829 1000',
        fresh.uri('m'),
      ],
      { timeoutMs: 60_000 },
    );
    expect(w.code, w.stdout + w.stderr).toBe(0);
    expect(w.stdout).not.toMatch(/Pattern verification failed/);
    const map = await run('nbdinfo', ['--map', fresh.uri('m')], { timeoutMs: 30_000 });
    expect(map.code, map.stderr).toBe(0);
    const rows = map.stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/));
    const covered = rows.reduce((n, r) => n + Number(r[1]), 0);
    expect(covered).toBe(16 * MiB);
    const data = rows.filter((r) => r[2] === '0');
    expect(data.some((r) => Number(r[0]) <= 3 * MiB && Number(r[0]) + Number(r[1]) >= 4 * MiB)).toBe(true);
    expect(rows.filter((r) => r[2] === '3').reduce((n, r) => n + Number(r[1]), 0)).toBeGreaterThan(10 * MiB);
  }, 120_000);
});
