// Thin provisioning seen by real clients: nbdcopy of a 1 GiB thin lvol holding 8 MiB copies
// (and allocates) about 8 MiB, also through a split and a raid0; nbdinfo --map and qemu-img map
// agree with what was written; qemu:allocation-depth tells a clone's own clusters from its
// snapshot's.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bdev } from '../../src/bdev/bdev.js';
import { silentLogger } from '../../src/log.js';
import { Server } from '../../src/server.js';
import { pattern, write } from '../bdev/conformance.js';
import { run } from '../helpers/run.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';

const MiB = 2 ** 20,
  GiB = 2 ** 30;
const have = tool('nbdcopy', 'nbdinfo', 'qemu-img');

interface NbdinfoExtent {
  offset: number;
  length: number;
  type: number;
  description: string;
}
interface QemuExtent {
  start: number;
  length: number;
  data: boolean;
  zero: boolean;
}

describe.skipIf(!have)('thin provisioning end to end, with nbdcopy, nbdinfo and qemu-img', () => {
  let s: Server;
  let dir: string;
  let sock: string;
  const uri = (name: string): string => `nbd+unix:///${name}?socket=${sock}`;
  /** Where 'big' holds data: eight 1 MiB clusters, spread over the 1 GiB. */
  const chunks = [0, 130, 260, 390, 520, 650, 780, 1023].map((m) => m * MiB);

  beforeAll(async () => {
    dir = tmpDir();
    sock = path.join(dir, 'nbd.sock');
    s = new Server({ log: silentLogger() });
    const base = path.join(dir, 'base.img');
    fs.writeFileSync(base, '');
    fs.truncateSync(base, 256 * MiB);
    await s.createAio({ filename: base, name: 'base', blockSize: 4096 });
    await s.createLvstore('base', 'lvs', MiB);
    const lvol = async (name: string, sizeMib: number): Promise<Bdev> =>
      s.bdevs.get(await s.createLvol({ lvsName: 'lvs', lvolName: name, sizeMib, thin: true }));
    const big = await lvol('big', 1024);
    for (const [i, at] of chunks.entries()) expect(await write(big, at, pattern(MiB, i + 1))).toBe(0);
    // The same 8 MiB in the second half of a lvol cut in two by split.
    const sp = await lvol('sp', 1024);
    for (const [i, at] of chunks.entries())
      expect(await write(sp, 512 * MiB + Math.floor(at / 2 / MiB) * MiB, pattern(MiB, i + 1))).toBe(0);
    await s.createSplit(sp.name, 2);
    // And 8 MiB through a raid0 of two thin lvols (2 MiB pieces: whole clusters on each member).
    await lvol('ra', 512);
    await lvol('rb', 512);
    const raid = await s.createRaid({ name: 'r0', raidLevel: '0', baseBdevs: ['lvs/ra', 'lvs/rb'], stripSizeKb: 64 });
    for (const [i, at] of [0, 300, 700, 1022].entries()) expect(await write(raid, at * MiB, pattern(2 * MiB, 20 + i))).toBe(0);
    s.addExport('lvs/big', { name: 'big' });
    s.addExport(`${sp.name}p1`, { name: 'half' });
    s.addExport('r0');
    await s.listen(`unix:${sock}`);
  }, 60_000);
  afterAll(async () => {
    await s?.close();
    rmrf(dir);
  });

  const bytesRead = (name: string): number => (s.bdevs.get(name).stat.toJSON() as { bytes_read: number }).bytes_read;

  /** Copies an export into a new sparse file with nbdcopy; returns the bytes the file allocates. */
  async function copy(name: string, size: number): Promise<number> {
    const out = path.join(dir, `${name}.copy`);
    const bdev = s.nbd.getExport(name)?.bdev.name as string;
    const before = bytesRead(bdev);
    const r = await run('nbdcopy', [uri(name), out], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    // Block status let nbdcopy skip the zeroes: it read the data, not the whole export.
    expect(bytesRead(bdev) - before, name).toBeLessThanOrEqual(8 * MiB);
    expect(fs.statSync(out).size).toBe(size);
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', out, uri(name)], { timeoutMs: 60_000 });
    expect(cmp.stdout, cmp.stderr).toMatch(/Images are identical/);
    const allocated = fs.statSync(out).blocks * 512;
    fs.rmSync(out);
    return allocated;
  }

  it('nbdcopy of a 1 GiB thin lvol holding 8 MiB allocates about 8 MiB; the same through split and raid0', async () => {
    for (const [name, size] of [
      ['big', GiB],
      ['half', GiB / 2],
      ['r0', GiB],
    ] as const) {
      const allocated = await copy(name, size);
      expect(allocated, name).toBeGreaterThanOrEqual(8 * MiB);
      expect(allocated, name).toBeLessThan(10 * MiB);
    }
  }, 120_000);

  it('nbdinfo --map and qemu-img map agree with what was written', async () => {
    const want = (at: number): number => (chunks.includes(at) ? 0 : 3);
    const info = await run('nbdinfo', ['--map', '--json', uri('big')], { timeoutMs: 30_000 });
    expect(info.code, info.stderr).toBe(0);
    const ext = JSON.parse(info.stdout) as NbdinfoExtent[];
    const qemu = await run('qemu-img', ['map', '--output=json', '-f', 'raw', uri('big')], { timeoutMs: 30_000 });
    expect(qemu.code, qemu.stderr).toBe(0);
    const qext = JSON.parse(qemu.stdout) as QemuExtent[];
    // Walk both, MiB by MiB: data exactly where written, hole and zero elsewhere.
    const at = <T extends { length: number }>(list: T[], start: (e: T) => number, off: number): T | undefined =>
      list.find((e) => start(e) <= off && off < start(e) + e.length);
    for (let off = 0; off < GiB; off += MiB) {
      const e = at(ext, (x) => x.offset, off),
        q = at(qext, (x) => x.start, off);
      expect(e?.type, `nbdinfo at ${off}`).toBe(want(off));
      expect([q?.data, q?.zero], `qemu-img at ${off}`).toEqual(want(off) === 0 ? [true, false] : [false, true]);
    }
    expect(ext.filter((e) => e.type === 0).reduce((n, e) => n + e.length, 0)).toBe(8 * MiB);
  }, 60_000);

  it("qemu:allocation-depth: listed for lvols only; a clone's clusters at depth 1, its snapshot's at 2, the rest 0", async () => {
    const list = await run('nbdinfo', ['--list', `nbd+unix://?socket=${sock}`], { timeoutMs: 30_000 });
    expect(list.code, list.stderr).toBe(0);
    const contexts = (exp: string): string => list.stdout.split(/export="/).find((b) => b.startsWith(`${exp}"`)) ?? '';
    expect(contexts('big')).toMatch(/contexts:\s+base:allocation\s+qemu:allocation-depth/);
    expect(contexts('r0')).not.toContain('qemu:allocation-depth');
    await s.snapshotLvol('lvs/big', 'big-snap');
    expect(await write(s.bdevs.get('lvs/big'), 64 * MiB, pattern(4096, 99))).toBe(0);
    const r = await run('nbdinfo', ['--map=qemu:allocation-depth', '--json', uri('big')], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    const ext = JSON.parse(r.stdout) as NbdinfoExtent[];
    const depthAt = (off: number): number | undefined => ext.find((e) => e.offset <= off && off < e.offset + e.length)?.type;
    for (const c of chunks) expect(depthAt(c)).toBe(2);
    expect(depthAt(64 * MiB)).toBe(1);
    expect(depthAt(32 * MiB)).toBe(0);
    expect(ext.find((e) => e.type === 2)?.description).toBe('backing depth 2');
    // base:allocation of the same clone: its snapshot's data is data.
    const alloc = JSON.parse((await run('nbdinfo', ['--map', '--json', uri('big')], { timeoutMs: 30_000 })).stdout) as NbdinfoExtent[];
    expect(alloc.filter((e) => e.type === 0).reduce((n, e) => n + e.length, 0)).toBe(9 * MiB);
  }, 60_000);
});
