// Logical volumes: thin and thick allocation, the metadata on the base bdev (our format), and
// lvstores coming back when their base is created again.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAGIC } from '../../src/modules/lvol/lvol_format.js';
import { IoType } from '../../src/bdev/types.js';
import { BdevClaimedError, BdevInUseError, NoSpaceError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { Server } from '../../src/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { fill, pattern, read, submit, write } from './conformance.js';

const MiB = 2 ** 20;

describe('lvol', () => {
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

  async function aioBase(name = 'base', size = 32 * MiB): Promise<string> {
    const file = path.join(dir, `${name}.img`);
    if (!fs.existsSync(file)) fs.writeFileSync(file, Buffer.alloc(0));
    fs.truncateSync(file, size);
    await s.createAio({ filename: file, name, blockSize: 512 });
    return file;
  }

  it("allocates a thin lvol's clusters on first write; unwritten ones read as zeroes", async () => {
    await s.createMalloc({ name: 'm', blockSize: 512, numBlocks: (16 * MiB) / 512 });
    await s.createLvstore('m', 'lvs', MiB);
    const [info] = s.getLvstores({ lvsName: 'lvs' });
    expect(info).toMatchObject({ name: 'lvs', base_bdev: 'm', block_size: 512, cluster_size: MiB });
    const total = info?.total_data_clusters ?? 0;
    expect(total).toBeGreaterThanOrEqual(14);
    const uuid = await s.createLvol({ lvsName: 'lvs', lvolName: 'thin', sizeMib: 8, thin: true });
    const lv = s.bdevs.get('lvs/thin');
    expect(lv.name).toBe(uuid);
    expect(s.getBdevs('lvs/thin')[0]).toMatchObject({
      product_name: 'Logical Volume',
      aliases: ['lvs/thin'],
      num_blocks: (8 * MiB) / 512,
      driver_specific: { lvol: { thin_provision: true, num_allocated_clusters: 0, base_bdev: 'm' } },
    });
    expect(s.getLvstores()[0]?.free_clusters).toBe(total);
    expect((await read(lv, 3 * MiB, 4096)).equals(fill(4096, 0))).toBe(true);
    // Two concurrent writes into one new cluster allocate it once.
    const [a, b] = await Promise.all([write(lv, 3 * MiB, pattern(4096, 1)), write(lv, 3 * MiB + 8192, pattern(4096, 2))]);
    expect([a, b]).toEqual([0, 0]);
    expect(s.getLvstores()[0]?.free_clusters).toBe(total - 1);
    expect((await read(lv, 3 * MiB, 4096)).equals(pattern(4096, 1))).toBe(true);
    expect((await read(lv, 3 * MiB + 4096, 4096)).equals(fill(4096, 0))).toBe(true); // zeroed at allocation
    expect((await read(lv, 3 * MiB + 8192, 4096)).equals(pattern(4096, 2))).toBe(true);
    // A write across a cluster boundary allocates both.
    expect(await write(lv, 5 * MiB - 512, pattern(1024, 3))).toBe(0);
    expect(s.getLvstores()[0]?.free_clusters).toBe(total - 3);
    expect((await read(lv, 5 * MiB - 512, 1024)).equals(pattern(1024, 3))).toBe(true);
    expect((await submit(lv, IoType.WriteZeroes, 0, 8 * MiB)).result).toBe(0);
    expect((await read(lv, 5 * MiB - 512, 1024)).equals(fill(1024, 0))).toBe(true);
  });

  it('allocates a thick lvol at once, refuses what does not fit, frees on delete', async () => {
    await s.createMalloc({ name: 'm', blockSize: 4096, numBlocks: (16 * MiB) / 4096 });
    await s.createLvstore('m', 'lvs', MiB);
    const total = s.getLvstores()[0]?.total_data_clusters ?? 0;
    await s.createLvol({ lvsName: 'lvs', lvolName: 'thick', sizeMib: 5 });
    expect(s.getLvstores()[0]?.free_clusters).toBe(total - 5);
    await expect(s.createLvol({ lvsName: 'lvs', lvolName: 'big', sizeMib: total })).rejects.toBeInstanceOf(NoSpaceError);
    expect(s.getLvstores()[0]?.free_clusters).toBe(total - 5);
    // The base belongs to the lvstore.
    await expect(s.deleteBdev('m')).rejects.toBeInstanceOf(BdevInUseError);
    await expect(s.createError('m')).rejects.toBeInstanceOf(BdevClaimedError);
    await expect(s.deleteLvstore('lvs')).rejects.toThrow(/still has 1 lvol/);
    await s.deleteLvol('lvs/thick');
    expect(s.getLvstores()[0]?.free_clusters).toBe(total);
    await s.deleteLvstore('lvs');
    expect(s.bdevs.get('m').claim).toBeNull();
  });

  it('resizes: growing adds clusters, shrinking frees the tail', async () => {
    await s.createMalloc({ name: 'm', blockSize: 512, numBlocks: (16 * MiB) / 512 });
    await s.createLvstore('m', 'lvs', MiB);
    await s.createLvol({ lvsName: 'lvs', lvolName: 'v', sizeMib: 2 });
    const lv = s.bdevs.get('lvs/v');
    await s.resizeLvol('lvs/v', 4);
    expect(lv.numBlocks).toBe((4 * MiB) / 512);
    expect(await write(lv, 3 * MiB, pattern(512, 4))).toBe(0);
    const free = s.getLvstores()[0]?.free_clusters ?? 0;
    await s.resizeLvol('lvs/v', 1);
    expect(lv.numBlocks).toBe(MiB / 512);
    expect(s.getLvstores()[0]?.free_clusters).toBe(free + 3);
  });

  it('writes its metadata on the base: the lvstore and lvols come back with their data when the base returns', async () => {
    const file = await aioBase();
    const lvsUuid = await s.createLvstore('base', 'lvs0', MiB);
    const thin = await s.createLvol({ lvsName: 'lvs0', lvolName: 'thin', sizeMib: 4, thin: true });
    const thick = await s.createLvol({ lvsName: 'lvs0', lvolName: 'thick', sizeMib: 3 });
    expect(await write(s.bdevs.get(thin), 2 * MiB, pattern(8192, 5))).toBe(0);
    expect(await write(s.bdevs.get(thick), 0, pattern(4096, 6))).toBe(0);
    const before = { bdevs: s.getBdevs(), stores: s.getLvstores(), uuid: s.bdevs.get('base').uuid };
    // Our format, at byte 0 of the base.
    const head = Buffer.alloc(16);
    const fd = fs.openSync(file, 'r');
    fs.readSync(fd, head, 0, 16, 0);
    fs.closeSync(fd);
    expect(head.subarray(0, 8).equals(MAGIC)).toBe(true);
    expect(head.readUInt32LE(8)).toBe(2);
    await s.close();

    s = new Server({ log: silentLogger() });
    await s.createAio({ filename: file, name: 'base', blockSize: 512, uuid: before.uuid });
    expect(s.getLvstores()).toEqual(before.stores);
    expect(s.getLvstores()[0]?.uuid).toBe(lvsUuid);
    expect(s.getBdevs()).toEqual(before.bdevs);
    expect((await read(s.bdevs.get('lvs0/thin'), 2 * MiB, 8192)).equals(pattern(8192, 5))).toBe(true);
    expect((await read(s.bdevs.get('lvs0/thick'), 0, 4096)).equals(pattern(4096, 6))).toBe(true);
    // save_config has no lvol entries: they come back from the base, as SPDK's do.
    expect(JSON.stringify(s.saveConfig())).not.toContain('lvol');
  });

  it('falls back to the older metadata slot when the newer one is torn', async () => {
    const file = await aioBase();
    await s.createLvstore('base', 'lvs0', MiB);
    await s.createLvol({ lvsName: 'lvs0', lvolName: 'a', sizeMib: 1 }); // generation 2, in slot B
    await s.createLvol({ lvsName: 'lvs0', lvolName: 'b', sizeMib: 1 }); // generation 3, in slot A
    await s.close();
    // Tear slot A's JSON (its header stays: it tells where slot B is).
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from('garbage'), 0, 7, 100);
    fs.closeSync(fd);
    s = new Server({ log: silentLogger() });
    await s.createAio({ filename: file, name: 'base', blockSize: 512 });
    expect(s.bdevs.has('lvs0/a')).toBe(true);
    expect(s.bdevs.has('lvs0/b')).toBe(false);
  });

  it('is forgotten on disk when its lvstore is deleted', async () => {
    const file = await aioBase();
    await s.createLvstore('base', 'gone', MiB);
    await s.deleteLvstore('gone');
    await s.deleteBdev('base');
    await s.createAio({ filename: file, name: 'base', blockSize: 512 });
    expect(s.getLvstores()).toEqual([]);
    expect(s.bdevs.get('base').claim).toBeNull();
  });
});
