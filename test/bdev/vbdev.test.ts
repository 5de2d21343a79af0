// What each virtual bdev does beyond passing I/O through: error injection, latencies, raid0
// striping, split offsets; and the statistics bdev_get_iostat reports.
import { constants } from 'node:os';
import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IoType } from '../../src/bdev/types.js';
import { BdevWrongModuleError, InvalidBdevError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { Server } from '../../src/server.js';
import { fill, pattern, read, submit, write } from './conformance.js';

const E = constants.errno;
const KiB = 1024;

describe('virtual bdevs', () => {
  let s: Server;
  beforeEach(() => {
    s = new Server({ log: silentLogger() });
  });
  afterEach(async () => {
    await s.close();
  });

  describe('error', () => {
    beforeEach(async () => {
      await s.createMalloc({ name: 'm', blockSize: 512, numBlocks: 2048 });
      await s.createError('m');
    });

    it('fails exactly num I/Os of the chosen type with EIO, then passes the rest', async () => {
      const ee = s.bdevs.get('EE_m');
      s.resetIostat(undefined, 'all'); // examine read EE_m when it was created
      s.injectError('EE_m', { ioType: 'read', errorType: 'failure', num: 2 });
      expect((await submit(ee, IoType.Read, 0, 512)).result).toBe(-E.EIO);
      expect((await submit(ee, IoType.Write, 0, 512)).result).toBe(0);
      expect((await submit(ee, IoType.Read, 0, 512)).result).toBe(-E.EIO);
      expect((await submit(ee, IoType.Read, 0, 512)).result).toBe(0);
      expect(s.iostat({ names: ['EE_m'] })).toMatchObject({
        bdevs: [{ name: 'EE_m', num_read_ops: 1, num_write_ops: 1, io_error: { failed: 2 } }],
      });
    });

    it('"all" hits every type, "clear" resets every counter', async () => {
      const ee = s.bdevs.get('EE_m');
      s.injectError('EE_m', { ioType: 'all', errorType: 'failure', num: 5 });
      expect((await submit(ee, IoType.Write, 0, 512)).result).toBe(-E.EIO);
      expect((await submit(ee, IoType.Flush, 0, 0)).result).toBe(-E.EIO);
      expect((await submit(ee, IoType.Unmap, 0, 512)).result).toBe(-E.EIO);
      s.injectError('EE_m', { ioType: 'clear', errorType: 'failure' });
      for (const t of [IoType.Read, IoType.Write, IoType.Flush])
        expect((await submit(ee, t, 0, t === IoType.Flush ? 0 : 512)).result).toBe(0);
    });

    it('hits only while queue_depth I/Os are already in flight', async () => {
      const ee = s.bdevs.get('EE_m');
      s.injectError('EE_m', { ioType: 'read', errorType: 'failure', num: 1, queueDepth: 1 });
      expect((await submit(ee, IoType.Read, 0, 512)).result).toBe(0); // alone: not hit
      const both = await Promise.all([submit(ee, IoType.Read, 0, 512), submit(ee, IoType.Read, 512, 512)]);
      expect(both.map((r) => r.result)).toEqual([0, -E.EIO]);
    });

    it('holds "pending" I/O until resumed, and aborts it on reset or delete', async () => {
      const ee = s.bdevs.get('EE_m');
      expect(await write(ee, 0, fill(512, 0x42))).toBe(0);
      s.injectError('EE_m', { ioType: 'read', errorType: 'pending', num: 2 });
      let settled = false;
      const held = submit(ee, IoType.Read, 0, 512).then((r) => {
        settled = true;
        return r;
      });
      await new Promise((r) => setImmediate(r));
      expect(settled).toBe(false);
      expect(s.resumePending('EE_m')).toBe(1);
      expect((await held).result).toBe(0);
      const aborted = submit(ee, IoType.Read, 0, 512);
      const deleting = s.deleteBdev('EE_m');
      expect((await aborted).result).toBe(-E.ECANCELED);
      await deleting;
    });

    it('"nomem" delays an I/O without failing it', async () => {
      s.injectError('EE_m', { ioType: 'write', errorType: 'nomem', num: 3 });
      const ee = s.bdevs.get('EE_m');
      const rs = await Promise.all([0, 1, 2, 3].map((i) => write(ee, i * 512, fill(512, i + 1))));
      expect(rs).toEqual([0, 0, 0, 0]);
      for (let i = 0; i < 4; i++) expect((await read(ee, i * 512, 512)).equals(fill(512, i + 1))).toBe(true);
    });

    it('"corrupt_data" flips a byte of a read, or writes a corrupted copy at the same offset', async () => {
      const ee = s.bdevs.get('EE_m'),
        m = s.bdevs.get('m');
      expect(await write(ee, 1024, fill(512, 0x10))).toBe(0);
      s.injectError('EE_m', { ioType: 'read', errorType: 'corrupt_data', num: 1, corruptOffset: 7, corruptValue: 0xff });
      const bad = await read(ee, 1024, 512);
      expect(bad[7]).toBe(0x10 ^ 0xff);
      expect(bad.subarray(8).equals(fill(504, 0x10))).toBe(true);
      expect((await read(ee, 1024, 512)).equals(fill(512, 0x10))).toBe(true); // num was 1
      s.injectError('EE_m', { ioType: 'write', errorType: 'corrupt_data', num: 1, corruptOffset: 3, corruptValue: 1 });
      const data = fill(1024, 0x20);
      expect(await write(ee, 4096, data)).toBe(0);
      expect(data.equals(fill(1024, 0x20))).toBe(true); // the caller's buffer is untouched
      const onDisk = await read(m, 4096, 1024);
      expect(onDisk[3]).toBe(0x21);
      expect(onDisk.subarray(4).equals(fill(1020, 0x20))).toBe(true);
      expect(() => s.injectError('EE_m', { ioType: 'read', errorType: 'corrupt_data', corruptValue: 0 })).toThrow(InvalidBdevError);
    });

    it('injects only into error bdevs', () => {
      expect(() => s.injectError('m', { ioType: 'read', errorType: 'failure' })).toThrow(BdevWrongModuleError);
      expect(s.getBdevs('EE_m')[0]).toMatchObject({
        product_name: 'Error Injection Disk',
        driver_specific: { error_disk: { base_bdev: 'm' } },
      });
    });
  });

  describe('delay', () => {
    it('holds reads and writes by their average latency, and applies an update to new I/O', async () => {
      await s.createMalloc({ name: 'm', blockSize: 4096, numBlocks: 256 });
      const d = await s.createDelay({
        name: 'd',
        baseBdevName: 'm',
        avgReadLatency: 30_000,
        p99ReadLatency: 30_000,
        avgWriteLatency: 60_000,
        p99WriteLatency: 60_000,
      });
      let t = performance.now();
      expect(await write(d, 0, fill(4096, 1))).toBe(0);
      expect(performance.now() - t).toBeGreaterThanOrEqual(59);
      t = performance.now();
      await read(d, 0, 4096);
      const readMs = performance.now() - t;
      expect(readMs).toBeGreaterThanOrEqual(29);
      s.updateDelayLatency('d', 'avg_read', 0);
      s.updateDelayLatency('d', 'p99_read', 0);
      t = performance.now();
      await read(d, 0, 4096);
      expect(performance.now() - t).toBeLessThan(readMs);
      expect(s.getBdevs('d')[0]).toMatchObject({
        product_name: 'delay',
        driver_specific: { delay: { base_bdev_name: 'm', avg_read_latency: 0, avg_write_latency: 60_000 } },
      });
      // FLUSH is not delayed.
      t = performance.now();
      expect((await submit(d, IoType.Flush, 0, 0)).result).toBe(0);
      expect(performance.now() - t).toBeLessThan(50);
    });

    it('refuses p99 below the average', async () => {
      await s.createMalloc({ name: 'm', blockSize: 512, numBlocks: 8 });
      await expect(
        s.createDelay({ name: 'd', baseBdevName: 'm', avgReadLatency: 10, p99ReadLatency: 5, avgWriteLatency: 0, p99WriteLatency: 0 }),
      ).rejects.toThrow(/p99/);
      expect(s.bdevs.get('m').claim).toBeNull();
    });
  });

  describe('raid0', () => {
    it('lays strips round-robin over its bases', async () => {
      for (const n of ['a', 'b', 'c']) await s.createMalloc({ name: n, blockSize: 512, numBlocks: 1024 });
      const r = await s.createRaid({ name: 'r', raidLevel: 'raid0', baseBdevs: ['a', 'b', 'c'], stripSizeKb: 4 });
      expect(r.numBlocks).toBe(3 * 1024);
      // Six strips in one write, starting half-way into strip 1.
      const data = pattern(6 * 4 * KiB, 5);
      expect(await write(r, 4 * KiB + 2 * KiB, data)).toBe(0);
      const strip = (k: number): Buffer => data.subarray(k * 4 * KiB - 2 * KiB, k * 4 * KiB + 2 * KiB);
      // raid strip k lives on base k % 3 at strip floor(k / 3).
      expect((await read(s.bdevs.get('b'), 2 * KiB, 2 * KiB)).equals(data.subarray(0, 2 * KiB))).toBe(true); // strip 1
      expect((await read(s.bdevs.get('c'), 0, 4 * KiB)).equals(strip(1))).toBe(true); // strip 2
      expect((await read(s.bdevs.get('a'), 4 * KiB, 4 * KiB)).equals(strip(2))).toBe(true); // strip 3
      expect((await read(s.bdevs.get('b'), 4 * KiB, 4 * KiB)).equals(strip(3))).toBe(true); // strip 4
      expect((await read(r, 4 * KiB + 2 * KiB, data.length)).equals(data)).toBe(true);
      expect(s.raidBdevs('all')).toEqual([
        expect.objectContaining({
          name: 'r',
          strip_size_kb: 4,
          state: 'online',
          raid_level: 'raid0',
          num_base_bdevs: 3,
          base_bdevs_list: [
            expect.objectContaining({ name: 'a', is_configured: true }),
            expect.objectContaining({ name: 'b' }),
            expect.objectContaining({ name: 'c' }),
          ],
        }),
      ]);
    });

    it('sends FLUSH to every base and UNMAP as one range per base', async () => {
      for (const n of ['a', 'b']) await s.createMalloc({ name: n, blockSize: 512, numBlocks: 1024 });
      const r = await s.createRaid({ name: 'r', raidLevel: '0', baseBdevs: ['a', 'b'], stripSizeKb: 4 });
      expect((await submit(r, IoType.Flush, 0, 0)).result).toBe(0);
      expect(s.bdevs.get('a').stat.numFlushOps).toBe(1);
      expect(s.bdevs.get('b').stat.numFlushOps).toBe(1);
      expect((await submit(r, IoType.Unmap, 2 * KiB, 20 * KiB)).result).toBe(0);
      expect(s.bdevs.get('a').stat.numUnmapOps + s.bdevs.get('b').stat.numUnmapOps).toBe(2);
      expect(s.bdevs.get('a').stat.bytesUnmapped + s.bdevs.get('b').stat.bytesUnmapped).toBe(20 * KiB);
    });

    it('checks strip size and block sizes', async () => {
      await s.createMalloc({ name: 'a', blockSize: 512, numBlocks: 1024 });
      await s.createMalloc({ name: 'b', blockSize: 4096, numBlocks: 128 });
      await expect(s.createRaid({ name: 'r', raidLevel: '0', baseBdevs: ['a', 'b'], stripSizeKb: 4 })).rejects.toThrow(/same block size/);
      await expect(s.createRaid({ name: 'r', raidLevel: '0', baseBdevs: ['a'], stripSizeKb: 3 })).rejects.toThrow(/power of two/);
      await expect(s.createRaid({ name: 'r', raidLevel: '1', baseBdevs: ['a'], stripSizeKb: 4 })).rejects.toThrow(/only raid0/);
    });
  });

  describe('split', () => {
    it('cuts <base>p0.. at consecutive offsets, sharing one claim, with stable UUIDs', async () => {
      await s.createMalloc({ name: 'm', blockSize: 512, numBlocks: 8192, uuid: '11111111-2222-4333-8444-555555555555' });
      expect(await s.createSplit('m', 3)).toEqual(['mp0', 'mp1', 'mp2']);
      const p1 = s.bdevs.get('mp1');
      expect(p1.numBlocks).toBe(Math.floor(8192 / 3));
      expect(await write(p1, 0, fill(512, 9))).toBe(0);
      expect((await read(s.bdevs.get('m'), p1.numBlocks * 512, 512)).equals(fill(512, 9))).toBe(true);
      expect(s.getBdevs('mp1')[0]).toMatchObject({
        product_name: 'Split Disk',
        driver_specific: { split: { base_bdev: 'm', offset_blocks: p1.numBlocks } },
      });
      expect(s.bdevs.get('m').claim).toMatchObject({ module: 'split', by: 'm', count: 3 });
      const uuid = p1.uuid;
      await s.deleteSplit('m');
      expect(s.bdevs.get('m').claim).toBeNull();
      await s.createSplit('m', 3);
      expect(s.bdevs.get('mp1').uuid).toBe(uuid);
    });

    it('clamps the count to what fits with split_size_mb', async () => {
      await s.createMalloc({ name: 'm', blockSize: 512, numBlocks: 5 * 2048 });
      expect(await s.createSplit('m', 8, 2)).toEqual(['mp0', 'mp1']);
      expect(s.bdevs.get('mp1').numBlocks).toBe(2 * 2048);
    });
  });
});

describe('I/O statistics (bdev_get_iostat)', () => {
  let s: Server;
  beforeEach(() => {
    s = new Server({ log: silentLogger() });
  });
  afterEach(async () => {
    await s.close();
  });

  it('reports SPDK fields in SPDK order, counting successes by type and failures by status', async () => {
    const m = await s.createMalloc({ name: 'm', blockSize: 512, numBlocks: 2048 });
    expect(await write(m, 0, fill(4096, 1))).toBe(0);
    await read(m, 0, 1024);
    await read(m, 0, 512);
    expect((await submit(m, IoType.Unmap, 0, 2048)).result).toBe(0);
    expect((await submit(m, IoType.Flush, 0, 0)).result).toBe(0);
    // Refused at submit (past the end): not an I/O, not counted.
    expect((await submit(m, IoType.Read, 1024 * 1024, 512)).result).toBe(-E.EINVAL);
    const st = s.iostat();
    expect(st['tick_rate']).toBe(1e9);
    expect(typeof st['ticks']).toBe('number');
    const b = (st['bdevs'] as Record<string, unknown>[])[0] as Record<string, unknown>;
    expect(Object.keys(b).slice(0, 24)).toEqual([
      'name',
      'bytes_read',
      'num_read_ops',
      'bytes_written',
      'num_write_ops',
      'bytes_unmapped',
      'num_unmap_ops',
      'bytes_copied',
      'num_copy_ops',
      'read_latency_ticks',
      'max_read_latency_ticks',
      'min_read_latency_ticks',
      'write_latency_ticks',
      'max_write_latency_ticks',
      'min_write_latency_ticks',
      'unmap_latency_ticks',
      'max_unmap_latency_ticks',
      'min_unmap_latency_ticks',
      'copy_latency_ticks',
      'max_copy_latency_ticks',
      'min_copy_latency_ticks',
      'io_error',
      'num_flush_ops',
      'num_write_zeroes_ops',
    ]);
    expect(b).toMatchObject({
      bytes_read: 1536,
      num_read_ops: 2,
      bytes_written: 4096,
      num_write_ops: 1,
      bytes_unmapped: 2048,
      num_unmap_ops: 1,
      io_error: {},
      num_flush_ops: 1,
      queue_depth: 0,
    });
    expect(b['max_read_latency_ticks'] as number).toBeGreaterThanOrEqual(b['min_read_latency_ticks'] as number);
    expect(b['read_latency_ticks'] as number).toBeGreaterThan(0);
  });

  it('resets by mode and reports one channel with per_channel', async () => {
    const m = await s.createMalloc({ name: 'm', blockSize: 512, numBlocks: 2048 });
    await read(m, 0, 512);
    s.iostat({ names: ['m'], resetMode: 'maxmin' });
    expect(m.stat.numReadOps).toBe(1);
    expect(m.stat.read.max).toBe(0);
    const pc = s.iostat({ names: ['m'], perChannel: true, resetMode: 'all' });
    expect(pc).toMatchObject({ name: 'm', channels: [{ thread_id: 1, num_read_ops: 1, io_error: {} }] });
    expect(m.stat.numReadOps).toBe(0);
    expect(() => s.iostat({ perChannel: true })).toThrow(/exactly one/);
  });
});
