// The registry and the target around it: claims, name/alias/UUID lookup, hot-remove of an
// exported bdev with I/O in flight, and rescan of a grown file.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Bdev } from '../../src/bdev/bdev.js';
import { IoType } from '../../src/bdev/types.js';
import {
  BdevClaimedError,
  BdevExistsError,
  BdevInUseError,
  BdevNotFoundError,
  BdevWrongModuleError,
  ExportNotFoundError,
} from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { Server } from '../../src/server.js';
import { handshakeGo, RawClient, readSimpleReply, request } from '../helpers/wire.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { submit } from './conformance.js';

const MiB = 2 ** 20;

/** Resolves once cond() holds; checks once per macrotask, for at most timeoutMs. */
async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setImmediate(r));
  }
}

describe('bdev registry and target', () => {
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

  it('looks bdevs up by name, alias and UUID, which share one namespace', async () => {
    const m = await s.createMalloc({ name: 'm0', blockSize: 512, numBlocks: 2048, uuid: '2b9c6f1e-5d1a-4c7e-9f0b-3a8e6d4c2f10' });
    expect(s.bdevs.get('m0')).toBe(m);
    expect(s.bdevs.get('2b9c6f1e-5d1a-4c7e-9f0b-3a8e6d4c2f10')).toBe(m);
    expect(s.getBdevs('2b9c6f1e-5d1a-4c7e-9f0b-3a8e6d4c2f10')[0]?.['aliases']).toEqual(['2b9c6f1e-5d1a-4c7e-9f0b-3a8e6d4c2f10']);
    await expect(s.createMalloc({ name: 'm0', blockSize: 512, numBlocks: 8 })).rejects.toBeInstanceOf(BdevExistsError);
    // Another bdev may not take m0's UUID as its name.
    await expect(s.createMalloc({ name: '2b9c6f1e-5d1a-4c7e-9f0b-3a8e6d4c2f10', blockSize: 512, numBlocks: 8 })).rejects.toBeInstanceOf(
      BdevExistsError,
    );
    expect(() => s.bdevs.get('nope')).toThrow(BdevNotFoundError);
  });

  it('lets a virtual bdev claim its base: no second claim, no delete, no export until it is gone', async () => {
    await s.createMalloc({ name: 'm0', blockSize: 512, numBlocks: 2048 });
    await s.createError('m0');
    expect(s.bdevs.get('m0').claim).toMatchObject({ module: 'error', by: 'EE_m0' });
    expect(s.getBdevs('m0')[0]).toMatchObject({ claimed: true, claim_type: 'exclusive_write' });
    await expect(
      s.createDelay({ name: 'd', baseBdevName: 'm0', avgReadLatency: 0, p99ReadLatency: 0, avgWriteLatency: 0, p99WriteLatency: 0 }),
    ).rejects.toBeInstanceOf(BdevClaimedError);
    expect(s.bdevs.has('d')).toBe(false); // nothing half-made is left
    await expect(s.createRaid({ name: 'r', raidLevel: '0', baseBdevs: ['m0'], stripSizeKb: 64 })).rejects.toThrow(
      /claimed by the error module/,
    );
    await expect(s.deleteBdev('m0')).rejects.toBeInstanceOf(BdevInUseError);
    expect(() => s.addExport('m0')).toThrow(BdevClaimedError);
    await expect(s.deleteBdev('EE_m0', 'malloc')).rejects.toBeInstanceOf(BdevWrongModuleError);
    await s.deleteBdev('EE_m0', 'error');
    expect(s.bdevs.get('m0').claim).toBeNull();
    await s.deleteBdev('m0', 'malloc');
    expect(s.getBdevs()).toEqual([]);
  });

  it('refuses a raid that names the same base twice', async () => {
    await s.createMalloc({ name: 'm0', blockSize: 512, numBlocks: 2048 });
    await expect(s.createRaid({ name: 'r', raidLevel: 'raid0', baseBdevs: ['m0', 'm0'], stripSizeKb: 4 })).rejects.toBeInstanceOf(
      BdevClaimedError,
    );
    expect(s.bdevs.get('m0').claim).toBeNull();
  });

  it('hot-removes an exported bdev: the request in flight is answered, then the connection closes', async () => {
    await s.createMalloc({ name: 'm0', blockSize: 512, numBlocks: 2048 });
    const d = await s.createDelay({
      name: 'slow',
      baseBdevName: 'm0',
      avgReadLatency: 300_000,
      p99ReadLatency: 300_000,
      avgWriteLatency: 0,
      p99WriteLatency: 0,
    });
    s.addExport('slow');
    const sock = path.join(dir, 'nbd.sock');
    await s.listen(`unix:${sock}`);
    const c = await RawClient.connect(sock);
    try {
      expect((await handshakeGo(c, 'slow')).size).toBe(BigInt(MiB));
      c.write(request(0, { cookie: 1n, offset: 0, length: 4096 }));
      await until(() => d.outstanding === 1);
      const deleting = s.deleteBdev('slow');
      // Gone from lookups at once; the delete itself waits for the read.
      expect(s.bdevs.has('slow')).toBe(false);
      expect(s.getExports()).toEqual([]);
      const late = await submit(d, IoType.Read, 0, 512);
      expect(late.result).toBe(-108); // ESHUTDOWN
      expect(await readSimpleReply(c)).toEqual({ magic: 0x67446698, error: 0, cookie: 1n });
      expect((await c.read(4096)).equals(Buffer.alloc(4096))).toBe(true);
      expect(await c.waitClosed()).toBe(true);
      await deleting;
      expect(s.bdevs.get('m0').claim).toBeNull();
      expect(() => s.removeExport('slow')).toThrow(ExportNotFoundError);
    } finally {
      c.close();
    }
  });

  it('rescan: a grown file grows the bdev; new connections see the new size, old ones keep theirs', async () => {
    const file = path.join(dir, 'a.img');
    fs.writeFileSync(file, Buffer.alloc(4 * MiB));
    const a = await s.createAio({ filename: file, name: 'a', blockSize: 4096 });
    await s.createMalloc({ name: 'other', blockSize: 512, numBlocks: 16 });
    s.addExport('other');
    s.addExport('a', { description: 'grows' });
    const sock = path.join(dir, 'nbd.sock');
    await s.listen(`unix:${sock}`);
    const c1 = await RawClient.connect(sock);
    const c2 = await RawClient.connect(sock);
    try {
      expect((await handshakeGo(c1, 'a')).size).toBe(BigInt(4 * MiB));
      fs.truncateSync(file, 12 * MiB);
      await s.rescanAio('a');
      expect(a.numBlocks).toBe(3 * 1024);
      expect(s.getBdevs('a')[0]?.['num_blocks']).toBe(3 * 1024);
      expect((await handshakeGo(c2, 'a')).size).toBe(BigInt(12 * MiB));
      // The export kept its place, options and neighbours.
      expect(s.getExports().map((x) => [x.name, x.description, x.size])).toEqual([
        ['other', '', 16 * 512],
        ['a', 'grows', 12 * MiB],
      ]);
      // The old connection reads within its size; the bdev serves the grown range to the new one.
      c2.write(request(0, { cookie: 7n, offset: 11 * MiB, length: 4096 }));
      expect((await readSimpleReply(c2)).error).toBe(0);
    } finally {
      c1.close();
      c2.close();
    }
  });

  it('rescan: shrinking below what connected clients were told is refused unless forced', async () => {
    const file = path.join(dir, 'a.img');
    fs.writeFileSync(file, Buffer.alloc(12 * MiB));
    await s.createAio({ filename: file, name: 'a', blockSize: 4096 });
    s.addExport('a');
    const sock = path.join(dir, 'nbd.sock');
    await s.listen(`unix:${sock}`);
    const c1 = await RawClient.connect(sock);
    try {
      expect((await handshakeGo(c1, 'a')).size).toBe(BigInt(12 * MiB));
      fs.truncateSync(file, 8 * MiB);
      const refused = s.rescanAio('a');
      await expect(refused).rejects.toBeInstanceOf(BdevInUseError);
      await expect(refused).rejects.toThrow(/connected clients were told it has 12582912 bytes; shrinking it to 8388608/);
      expect(s.bdevs.get('a').sizeBytes).toBe(12 * MiB);
      await s.rescanAio('a', true);
      expect(s.bdevs.get('a').sizeBytes).toBe(8 * MiB);
      // The old client still thinks 12 MiB: past 8 MiB it now gets an error, not someone else's data.
      c1.write(request(0, { cookie: 9n, offset: 10 * MiB, length: 4096 }));
      expect((await readSimpleReply(c1)).error).not.toBe(0);
    } finally {
      c1.close();
    }
    // Nobody connected: shrinking needs no force.
    for (let i = 0; i < 50 && s.nbd.connections > 0; i++) await new Promise((r) => setTimeout(r, 20));
    fs.truncateSync(file, 4 * MiB);
    await s.rescanAio('a');
    expect(s.bdevs.get('a').sizeBytes).toBe(4 * MiB);
  });

  it('rescan refuses to shrink a claimed bdev, and only works on AIO bdevs', async () => {
    const file = path.join(dir, 'a.img');
    fs.writeFileSync(file, Buffer.alloc(4 * MiB));
    await s.createAio({ filename: file, name: 'a', blockSize: 512 });
    await s.createError('a');
    fs.truncateSync(file, 2 * MiB);
    await expect(s.rescanAio('a')).rejects.toBeInstanceOf(BdevInUseError);
    await s.createMalloc({ name: 'm', blockSize: 512, numBlocks: 8 });
    await expect(s.rescanAio('m')).rejects.toBeInstanceOf(BdevWrongModuleError);
    // The error bdev over it follows a grown base.
    fs.truncateSync(file, 8 * MiB);
    await s.rescanAio('a');
    expect(s.bdevs.get('EE_a').numBlocks).toBe((8 * MiB) / 512);
  });

  it('rescan of a file cut to zero hot-removes the bdev', async () => {
    const file = path.join(dir, 'a.img');
    fs.writeFileSync(file, Buffer.alloc(MiB));
    await s.createAio({ filename: file, name: 'a', blockSize: 512 });
    s.addExport('a');
    fs.truncateSync(file, 0);
    await s.rescanAio('a');
    expect(s.bdevs.has('a')).toBe(false);
    expect(s.getExports()).toEqual([]);
  });

  it('closes every bdev, the topmost first, when the server closes', async () => {
    const file = path.join(dir, 'a.img');
    const bases: Bdev[] = [];
    for (const n of ['x', 'y']) {
      fs.writeFileSync(`${file}.${n}`, Buffer.alloc(MiB));
      bases.push(await s.createAio({ filename: `${file}.${n}`, name: n, blockSize: 512 }));
    }
    const r = await s.createRaid({ name: 'r', raidLevel: 'raid0', baseBdevs: ['x', 'y'], stripSizeKb: 64 });
    const e = await s.createError('r');
    await s.close();
    for (const b of [...bases, r, e]) expect(b.closed).toBe(true);
    expect(s.bdevs.list()).toEqual([]);
  });
});
