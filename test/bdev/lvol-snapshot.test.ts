// lvol snapshots and clones: copy-on-write at cluster granularity, read-only snapshots, the
// chain (inflate, decouple), deletion rules, resize of clones, and the on-disk format (format 2
// written, format 1 still read, a newer format left alone), all byte for byte across restarts.
import fs from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Bdev } from '../../src/bdev/bdev.js';
import { blockStatus, knowsDepth } from '../../src/bdev/block_status.js';
import { BLOCK_HOLE, BLOCK_ZERO, IoType } from '../../src/bdev/types.js';
import { BdevInUseError, InvalidBdevError, LvolReadOnlyError, NoSpaceError } from '../../src/errors.js';
import { pino } from 'pino';
import { Server } from '../../src/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { fill, pattern, read, submit, write } from './conformance.js';

const E = constants.errno;
const MiB = 2 ** 20;
const HZ = BLOCK_HOLE | BLOCK_ZERO;

async function map(b: Bdev, offset: number, length: number): Promise<[number, number][]> {
  return (await blockStatus(b, offset, length)).map((e) => [e.length, e.flags]);
}
async function depths(b: Bdev, offset: number, length: number): Promise<[number, number][]> {
  return (await blockStatus(b, offset, length)).map((e) => [e.length, e.depth]);
}

describe('lvol snapshots and clones', () => {
  let s: Server;
  let dir: string;
  let file: string;
  let logs: string[];
  const open = (): Server => {
    logs = [];
    const stream = {
      write: (line: string): boolean => {
        logs.push(line);
        return true;
      },
    };
    return new Server({ log: pino({ level: 'info' }, stream) });
  };
  beforeEach(async () => {
    s = open();
    dir = tmpDir();
    file = path.join(dir, 'base.img');
    fs.writeFileSync(file, '');
    fs.truncateSync(file, 64 * MiB);
    await s.createAio({ filename: file, name: 'base', blockSize: 512 });
    await s.createLvstore('base', 'lvs', MiB);
  });
  afterEach(async () => {
    await s.close();
    rmrf(dir);
  });

  /** Closes the server and opens the base again in a new one: everything from the metadata. */
  async function restart(): Promise<void> {
    await s.close();
    s = open();
    await s.createAio({ filename: file, name: 'base', blockSize: 512 });
  }
  const get = (name: string): Bdev => s.bdevs.get(name);
  const free = (): number => s.getLvstores()[0]?.free_clusters ?? -1;

  it('snapshot: frozen contents, the lvol goes on as a clone; copy-on-write keeps the rest of a cluster', async () => {
    await s.createLvol({ lvsName: 'lvs', lvolName: 'v', sizeMib: 4, thin: true });
    const a = pattern(2 * MiB, 1);
    expect(await write(get('lvs/v'), MiB, a)).toBe(0);
    const before = free();
    const snapUuid = await s.snapshotLvol('lvs/v', 'snap');
    expect(get('lvs/snap').name).toBe(snapUuid);
    expect(free()).toBe(before); // metadata only: the clusters change hands
    // A write into half a cluster: that cluster is copied, then written.
    const b = pattern(4096, 2);
    expect(await write(get('lvs/v'), MiB + 8192, b)).toBe(0);
    expect(free()).toBe(before - 1);
    const want = Buffer.from(a);
    b.copy(want, 8192);
    expect((await read(get('lvs/v'), MiB, 2 * MiB)).equals(want)).toBe(true);
    expect((await read(get('lvs/snap'), MiB, 2 * MiB)).equals(a)).toBe(true);
    expect((await read(get('lvs/v'), 0, MiB)).equals(fill(MiB, 0))).toBe(true);
    expect(s.getBdevs('lvs/snap')[0]).toMatchObject({
      driver_specific: { lvol: { snapshot: true, clone: false, clones: ['v'], read_only: true } },
    });
    expect(s.getBdevs('lvs/v')[0]).toMatchObject({
      driver_specific: { lvol: { snapshot: false, clone: true, base_snapshot: 'snap', thin_provision: true } },
    });

    // Read-only: writes fail with EROFS, resizing and snapshotting it are refused.
    expect(get('lvs/snap').readonly).toBe(true);
    expect((await submit(get('lvs/snap'), IoType.Write, 0, 4096)).result).toBe(-E.EROFS);
    await expect(s.resizeLvol('lvs/snap', 8)).rejects.toBeInstanceOf(LvolReadOnlyError);
    await expect(s.snapshotLvol('lvs/snap', 'again')).rejects.toBeInstanceOf(LvolReadOnlyError);

    await restart();
    expect((await read(get('lvs/v'), MiB, 2 * MiB)).equals(want)).toBe(true);
    expect((await read(get('lvs/snap'), MiB, 2 * MiB)).equals(a)).toBe(true);
    expect(get('lvs/snap').readonly).toBe(true);
  });

  it('thin lvol: clusters as written, depths down the snapshot chain, through a split', async () => {
    await s.createLvol({ lvsName: 'lvs', lvolName: 'v', sizeMib: 8, thin: true });
    const v = s.bdevs.get('lvs/v');
    expect(knowsDepth(v)).toBe(true);
    expect(await depths(v, 0, 8 * MiB)).toEqual([[8 * MiB, 0]]);
    expect(await write(v, MiB + 4096, pattern(4096, 4))).toBe(0);
    expect(await map(v, 0, 8 * MiB)).toEqual([
      [MiB, HZ],
      [MiB, 0],
      [6 * MiB, HZ],
    ]);
    await s.snapshotLvol('lvs/v', 's1');
    expect(await write(v, 3 * MiB, pattern(4096, 5))).toBe(0);
    await s.snapshotLvol('lvs/v', 's2');
    expect(await write(v, 5 * MiB, pattern(4096, 6))).toBe(0);
    // Cluster 1 in s1 (depth 3), 3 in s2 (2), 5 in v itself (1); the rest nowhere (0).
    expect(await depths(v, 0, 8 * MiB)).toEqual([
      [MiB, 0],
      [MiB, 3],
      [MiB, 0],
      [MiB, 2],
      [MiB, 0],
      [MiB, 1],
      [2 * MiB, 0],
    ]);
    expect(await map(v, 0, 8 * MiB)).toEqual([
      [MiB, HZ],
      [MiB, 0],
      [MiB, HZ],
      [MiB, 0],
      [MiB, HZ],
      [MiB, 0],
      [2 * MiB, HZ],
    ]);
    const [p0, p1] = await s.createSplit(v.name, 2);
    expect(knowsDepth(s.bdevs.get(p0 as string))).toBe(true);
    expect(await depths(s.bdevs.get(p1 as string), 0, 4 * MiB)).toEqual([
      [MiB, 0],
      [MiB, 1],
      [2 * MiB, 0],
    ]);
  });

  it('a snapshot taken while writes are in flight holds each write whole or not at all', async () => {
    await s.createLvol({ lvsName: 'lvs', lvolName: 'v', sizeMib: 32, thin: true });
    const v = get('lvs/v');
    const writes = Array.from({ length: 48 }, (_, i) => write(v, i * 640 * 1024, pattern(64 * 1024, 100 + i)));
    const snap = s.snapshotLvol('lvs/v', 'snap');
    expect(await Promise.all(writes)).toEqual(Array<number>(48).fill(0));
    await snap;
    let inSnapshot = 0;
    for (let i = 0; i < 48; i++) {
      const want = pattern(64 * 1024, 100 + i);
      expect((await read(v, i * 640 * 1024, 64 * 1024)).equals(want)).toBe(true);
      const got = await read(get('lvs/snap'), i * 640 * 1024, 64 * 1024);
      if (got.equals(want)) inSnapshot++;
      else expect(got.equals(fill(64 * 1024, 0)), `write ${i} half in the snapshot`).toBe(true);
    }
    expect(inSnapshot).toBeGreaterThan(0);
  });

  it('clone: reads the snapshot, writes on each side stay on that side; deleting the snapshot is refused until no clone needs it', async () => {
    await s.createLvol({ lvsName: 'lvs', lvolName: 'v', sizeMib: 4, thin: true });
    const base = pattern(4 * MiB, 3);
    expect(await write(get('lvs/v'), 0, base)).toBe(0);
    await s.snapshotLvol('lvs/v', 'snap');
    await expect(s.cloneLvol('lvs/v', 'x')).rejects.toBeInstanceOf(InvalidBdevError); // not read-only
    await s.cloneLvol('lvs/snap', 'c1');
    await s.cloneLvol('lvs/snap', 'c2');
    const v = pattern(MiB, 4),
      c1 = pattern(512 * 1024, 5);
    expect(await write(get('lvs/v'), 0, v)).toBe(0);
    expect(await write(get('lvs/c1'), 3 * MiB + 512, c1)).toBe(0);
    const want = (over: Buffer, at: number): Buffer => {
      const b = Buffer.from(base);
      over.copy(b, at);
      return b;
    };
    const check = async (): Promise<void> => {
      expect((await read(get('lvs/snap'), 0, 4 * MiB)).equals(base)).toBe(true);
      expect((await read(get('lvs/v'), 0, 4 * MiB)).equals(want(v, 0))).toBe(true);
      expect((await read(get('lvs/c1'), 0, 4 * MiB)).equals(want(c1, 3 * MiB + 512))).toBe(true);
      expect((await read(get('lvs/c2'), 0, 4 * MiB)).equals(base)).toBe(true);
    };
    await check();
    expect(s.getLvols().map((l) => [l['name'], l['is_snapshot'], l['is_clone']])).toEqual([
      ['v', false, true],
      ['snap', true, false],
      ['c1', false, true],
      ['c2', false, true],
    ]);

    const refused = s.deleteLvol('lvs/snap');
    await expect(refused).rejects.toBeInstanceOf(BdevInUseError);
    await expect(refused).rejects.toThrow(/has clones \(lvs\/v, lvs\/c1, lvs\/c2\).*bdev_lvol_inflate or bdev_lvol_decouple_parent/);
    await restart();
    await check();

    // Each clone made independent its own way; then the snapshot may go.
    const before = free();
    await s.inflateLvol('lvs/v');
    expect(free()).toBe(before - 3); // v had 1 cluster of its own: the other 3 are now its too
    expect(s.getBdevs('lvs/v')[0]).toMatchObject({
      driver_specific: { lvol: { clone: false, thin_provision: false, num_allocated_clusters: 4 } },
    });
    await s.decoupleLvolParent('lvs/c1');
    await s.deleteLvol('lvs/c2');
    await s.deleteLvol('lvs/snap');
    await restart();
    expect((await read(get('lvs/v'), 0, 4 * MiB)).equals(want(v, 0))).toBe(true);
    expect((await read(get('lvs/c1'), 0, 4 * MiB)).equals(want(c1, 3 * MiB + 512))).toBe(true);
    expect(s.bdevs.has('lvs/snap')).toBe(false);
  });

  it('decouple takes one step down a chain; set_read_only makes an lvol cloneable', async () => {
    await s.createLvol({ lvsName: 'lvs', lvolName: 'v', sizeMib: 3, thin: true });
    expect(await write(get('lvs/v'), 0, pattern(4096, 6))).toBe(0);
    await s.snapshotLvol('lvs/v', 's1');
    expect(await write(get('lvs/v'), MiB, pattern(4096, 7))).toBe(0);
    await s.snapshotLvol('lvs/v', 's2');
    const all = await read(get('lvs/v'), 0, 3 * MiB);
    await s.decoupleLvolParent('lvs/v'); // from s2: its cluster 1 copied in, s1 is the parent now
    expect(s.getBdevs('lvs/v')[0]).toMatchObject({ driver_specific: { lvol: { base_snapshot: 's1', num_allocated_clusters: 1 } } });
    expect((await read(get('lvs/v'), 0, 3 * MiB)).equals(all)).toBe(true);
    await s.decoupleLvolParent('lvs/v');
    expect(s.getBdevs('lvs/v')[0]).toMatchObject({ driver_specific: { lvol: { clone: false, num_allocated_clusters: 2 } } });
    await expect(s.decoupleLvolParent('lvs/v')).rejects.toThrow(/has no parent/);
    expect((await read(get('lvs/v'), 0, 3 * MiB)).equals(all)).toBe(true);

    await s.setLvolReadOnly('lvs/v');
    expect((await submit(get('lvs/v'), IoType.Write, 0, 4096)).result).toBe(-E.EROFS);
    await s.cloneLvol('lvs/v', 'w');
    expect((await read(get('lvs/w'), 0, 3 * MiB)).equals(all)).toBe(true);
    await restart();
    expect(get('lvs/v').readonly).toBe(true);
    expect((await read(get('lvs/w'), 0, 3 * MiB)).equals(all)).toBe(true);
  });

  it('a clone shrunk and grown again reads zeroes where its snapshot still has data', async () => {
    await s.createLvol({ lvsName: 'lvs', lvolName: 'v', sizeMib: 4, thin: true });
    const data = pattern(4 * MiB, 8);
    expect(await write(get('lvs/v'), 0, data)).toBe(0);
    await s.snapshotLvol('lvs/v', 'snap');
    await s.resizeLvol('lvs/v', 2);
    await s.resizeLvol('lvs/v', 6);
    const got = await read(get('lvs/v'), 0, 6 * MiB);
    expect(got.subarray(0, 2 * MiB).equals(data.subarray(0, 2 * MiB))).toBe(true);
    expect(got.subarray(2 * MiB).equals(fill(4 * MiB, 0))).toBe(true);
    // Inflating needs a cluster for each of the 6; the store has fewer once a big lvol takes them.
    await s.createLvol({ lvsName: 'lvs', lvolName: 'big', sizeMib: free() - 3 });
    await expect(s.inflateLvol('lvs/v')).rejects.toBeInstanceOf(NoSpaceError);
    expect((await read(get('lvs/v'), 0, 6 * MiB)).equals(got)).toBe(true);
  });

  it('a format 1 store opens, and is written in format 2 at its first change; a newer format is left alone', async () => {
    await s.close();
    // Format 1, as the first lvol release wrote it: plain cluster maps, version 1 in the header.
    const slot = 128 * 1024;
    const meta = {
      uuid: '11111111-2222-4333-8444-555555555555',
      name: 'old',
      block_size: 512,
      cluster_size: MiB,
      slot_size: slot,
      data_offset: MiB,
      total_clusters: 63,
      lvols: [{ uuid: '66666666-7777-4888-9999-aaaaaaaaaaaa', name: 'vol', thin: true, clusters: [-1, 5, -1] }],
    };
    const json = Buffer.from(JSON.stringify(meta));
    const img = Buffer.alloc(2 * slot);
    img.write('AIONLVS1', 0, 'latin1');
    img.writeUInt32LE(1, 8);
    img.writeUInt32LE(64, 12);
    img.writeBigUInt64LE(1n, 16);
    img.writeUInt32LE(json.length, 24);
    img.writeUInt32LE(crc32(json), 28);
    img.writeUInt32LE(slot, 32);
    img.writeUInt32LE(crc32(img.subarray(0, 36)), 36);
    json.copy(img, 64);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, img, 0, img.length, 0);
    fs.writeSync(fd, pattern(MiB, 9), 0, MiB, MiB + 5 * MiB); // data cluster 5
    fs.closeSync(fd);
    s = open();
    await s.createAio({ filename: file, name: 'base', blockSize: 512 });
    expect(logs.join('')).toContain('is in on-disk format 1; it is rewritten in format 2 at its next metadata change');
    expect((await read(get('old/vol'), MiB, MiB)).equals(pattern(MiB, 9))).toBe(true);
    expect(await write(get('old/vol'), 0, pattern(4096, 10))).toBe(0); // allocates: metadata written
    // Both slots are format 2 now (generations 2 and 3): code that reads only format 1 finds
    // nothing, rather than the format 1 slot, which is stale.
    const fd2 = fs.openSync(file, 'r');
    for (const at of [0, slot]) {
      const head = Buffer.alloc(12);
      fs.readSync(fd2, head, 0, 12, at);
      expect(head.readUInt32LE(8)).toBe(2);
    }
    fs.closeSync(fd2);
    await restart();
    expect((await read(get('old/vol'), 0, 4096)).equals(pattern(4096, 10))).toBe(true);
    expect((await read(get('old/vol'), MiB, MiB)).equals(pattern(MiB, 9))).toBe(true);

    // A store some later aionbd wrote in format 3: not opened, not claimed, and the log says why.
    await s.close();
    const fd3 = fs.openSync(file, 'r+');
    for (const at of [0, slot]) {
      const h = Buffer.alloc(64);
      fs.readSync(fd3, h, 0, 64, at);
      h.writeUInt32LE(3, 8);
      h.writeUInt32LE(crc32(h.subarray(0, 36)), 36);
      fs.writeSync(fd3, h, 0, 64, at);
    }
    fs.closeSync(fd3);
    s = open();
    await s.createAio({ filename: file, name: 'base', blockSize: 512 });
    expect(s.getLvstores()).toEqual([]);
    expect(get('base').claim).toBeNull();
    expect(logs.join('')).toContain('holds an lvstore in on-disk format 3, which this aionbd cannot read: it is left alone');
  });
});
