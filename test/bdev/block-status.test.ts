// Block status through every bdev that can know it: malloc's zero tracking, aio's holes, split
// (shifted), raid0 (merged per strip), error and delay (passed through); and answers that stay
// true while writes are in flight. Thin lvols and their depths: lvol-snapshot.test.ts.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Bdev } from '../../src/bdev/bdev.js';
import { blockStatus, hasBlockStatus, knowsDepth } from '../../src/bdev/block_status.js';
import { BLOCK_HOLE, BLOCK_ZERO, IoType, type BlockExtent } from '../../src/bdev/types.js';
import { silentLogger } from '../../src/log.js';
import { Server } from '../../src/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { pattern, submit, write } from './conformance.js';

const KiB = 1024,
  MiB = 2 ** 20;
const HZ = BLOCK_HOLE | BLOCK_ZERO;

/** [length, flags] pairs of the answer. */
async function map(b: Bdev, offset: number, length: number): Promise<[number, number][]> {
  return (await blockStatus(b, offset, length)).map((e) => [e.length, e.flags]);
}

describe('block status', () => {
  let s: Server;
  let dir: string;
  beforeEach(() => {
    s = new Server({ log: silentLogger() });
    dir = tmpDir();
  });
  afterEach(async () => {
    await s.close();
    rmrf(dir);
  });

  async function aio(name: string, size: number): Promise<Bdev> {
    const file = path.join(dir, `${name}.img`);
    fs.writeFileSync(file, '');
    fs.truncateSync(file, size);
    return s.createAio({ filename: file, name, blockSize: 4096 });
  }

  it('malloc: written granules are data, the rest zero; UNMAP of whole granules makes them zero again', async () => {
    const m = await s.createMalloc({ name: 'm', blockSize: 512, numBlocks: (4 * MiB) / 512 });
    expect(hasBlockStatus(m)).toBe(true);
    expect(knowsDepth(m)).toBe(false);
    expect(await map(m, 0, 4 * MiB)).toEqual([[4 * MiB, BLOCK_ZERO]]);
    expect(await write(m, 100 * KiB, pattern(512, 1))).toBe(0);
    // The 64 KiB granule around it counts as data; a range inside reports only its own part.
    expect(await map(m, 0, 4 * MiB)).toEqual([
      [64 * KiB, BLOCK_ZERO],
      [64 * KiB, 0],
      [4 * MiB - 128 * KiB, BLOCK_ZERO],
    ]);
    expect(await map(m, 70 * KiB, 4 * KiB)).toEqual([[4 * KiB, 0]]);
    // Zeroing only part of the granule keeps it data (it may hold data elsewhere); all of it clears it.
    expect((await submit(m, IoType.Unmap, 96 * KiB, 32 * KiB)).result).toBe(0);
    expect(await map(m, 64 * KiB, 64 * KiB)).toEqual([[64 * KiB, 0]]);
    expect((await submit(m, IoType.WriteZeroes, 64 * KiB, 64 * KiB)).result).toBe(0);
    expect(await map(m, 0, 4 * MiB)).toEqual([[4 * MiB, BLOCK_ZERO]]);
  });

  it("aio: holes of the file; split shifts its base's answer; error and delay pass it through", async () => {
    const a = await aio('a', 8 * MiB);
    expect(await write(a, 5 * MiB, pattern(64 * KiB, 2))).toBe(0);
    expect(await map(a, 0, 8 * MiB)).toEqual([
      [5 * MiB, HZ],
      [64 * KiB, 0],
      [3 * MiB - 64 * KiB, HZ],
    ]);
    const [, p1] = await s.createSplit('a', 2);
    const part = s.bdevs.get(p1 as string);
    expect(await map(part, 0, 4 * MiB)).toEqual([
      [MiB, HZ],
      [64 * KiB, 0],
      [3 * MiB - 64 * KiB, HZ],
    ]);
    const ee = await s.createError(p1 as string);
    const d = await s.createDelay({
      name: 'slow',
      baseBdevName: ee.name,
      avgReadLatency: 1000,
      p99ReadLatency: 1000,
      avgWriteLatency: 1000,
      p99WriteLatency: 1000,
    });
    expect(await map(d, MiB - 4096, 8192)).toEqual([
      [4096, HZ],
      [4096, 0],
    ]);
    // An unaligned range counts its partial blocks whole.
    expect(await map(d, MiB - 100, 200)).toEqual([
      [100, HZ],
      [100, 0],
    ]);
  });

  it("raid0: the members' answers interleaved strip by strip and merged", async () => {
    const m0 = await s.createMalloc({ name: 'm0', blockSize: 4096, numBlocks: 1024 });
    const m1 = await s.createMalloc({ name: 'm1', blockSize: 4096, numBlocks: 1024 });
    const r = await s.createRaid({ name: 'r', raidLevel: '0', baseBdevs: [m0.name, m1.name], stripSizeKb: 64 });
    expect(await map(r, 0, 8 * MiB)).toEqual([[8 * MiB, BLOCK_ZERO]]);
    // Strip 3 (on m1) and strip 4 (on m0): adjacent on the raid, far apart on the members.
    expect(await write(r, 3 * 64 * KiB, pattern(128 * KiB, 3))).toBe(0);
    expect(await map(r, 0, 8 * MiB)).toEqual([
      [192 * KiB, BLOCK_ZERO],
      [128 * KiB, 0],
      [8 * MiB - 320 * KiB, BLOCK_ZERO],
    ]);
    expect(await map(r, 200 * KiB, 100 * KiB)).toEqual([[100 * KiB, 0]]);
    expect(await map(m1, 0, 256 * KiB)).toEqual([
      [64 * KiB, BLOCK_ZERO],
      [64 * KiB, 0],
      [128 * KiB, BLOCK_ZERO],
    ]);
  });

  it('never calls zero what a completed write has written, while writes and queries race', async () => {
    await s.createMalloc({ name: 'm', blockSize: 4096, numBlocks: (40 * MiB) / 4096 });
    await s.createLvstore('m', 'lvs', 64 * KiB);
    await s.createLvol({ lvsName: 'lvs', lvolName: 'a', sizeMib: 16, thin: true });
    await s.createLvol({ lvsName: 'lvs', lvolName: 'b', sizeMib: 16, thin: true });
    const mal = await s.createMalloc({ name: 'mm', blockSize: 4096, numBlocks: (32 * MiB) / 4096 });
    const raid = await s.createRaid({ name: 'r', raidLevel: '0', baseBdevs: ['lvs/a', 'lvs/b'], stripSizeKb: 128 });
    for (const b of [raid, mal]) {
      const done: { at: number; off: number; len: number }[] = [];
      let seq = 0;
      const writes: Promise<void>[] = [];
      const queries: Promise<void>[] = [];
      for (let i = 0; i < 200; i++) {
        const off = ((i * 7919) % 500) * 64 * KiB,
          len = 4096 * (1 + (i % 8));
        writes.push(
          write(b, off, pattern(len, i + 1)).then((r) => {
            expect(r).toBe(0);
            done.push({ at: ++seq, off, len });
          }),
        );
        if (i % 4 === 0) {
          const start = seq;
          queries.push(
            blockStatus(b, 0, b.sizeBytes).then((ext: BlockExtent[]) => {
              let pos = 0;
              for (const e of ext) {
                if ((e.flags & BLOCK_ZERO) !== 0) {
                  const clash = done.find((w) => w.at <= start && w.off < pos + e.length && pos < w.off + w.len);
                  expect(clash, `${b.name}: [${pos}, +${e.length}) called zero after a write there completed`).toBeUndefined();
                }
                pos += e.length;
              }
            }),
          );
        }
      }
      await Promise.all([...writes, ...queries]);
      // Once quiet, everything written is data.
      const ext = await blockStatus(b, 0, b.sizeBytes);
      for (const w of done) {
        let pos = 0;
        for (const e of ext) {
          if (w.off < pos + e.length && pos < w.off + w.len) expect(e.flags).toBe(0);
          pos += e.length;
        }
      }
    }
  });
});
