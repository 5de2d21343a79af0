// QoS token buckets on a malloc bdev, in this process: I/O over a limit waits (in order) and is
// never failed, other I/O types pass, removing the limits or closing the bdev lets what is held go.
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { Bdev } from '../../src/bdev/bdev.js';
import { bufferPool } from '../../src/bdev/buffers.js';
import { createMallocBdev } from '../../src/modules/malloc/malloc.js';
import { IoType, newIo, type BdevIo } from '../../src/bdev/types.js';
import { run } from '../helpers/bdev.js';

const KiB = 1024;

/** Submits n I/Os at once; resolves with their results in completion order and when the last one completed. */
function burst(b: Bdev, type: IoType, n: number, length: number): Promise<{ order: number[]; results: number[]; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const order: number[] = [],
      results: number[] = [];
    for (let i = 0; i < n; i++) {
      const io: BdevIo = newIo((x) => {
        order.push(i);
        results.push(x.result);
        if (order.length === n) resolve({ order, results, ms: performance.now() - t0 });
      });
      io.type = type;
      io.offset = (i * length) % (b.sizeBytes - length);
      io.length = length;
      io.buf = bufferPool().get(length);
      b.submit(io);
    }
  });
}

describe('bdev QoS', () => {
  let b: Bdev;
  afterEach(async () => {
    await b.close();
  });

  it('holds READ/WRITE to rw_ios_per_sec, in order, failing none', async () => {
    b = createMallocBdev({ name: 'q0', blockSize: 512, numBlocks: 8192 });
    b.setQosLimits({ rw_ios_per_sec: 2000 });
    expect(b.qosLimits).toEqual({ rw_ios_per_sec: 2000, rw_mbytes_per_sec: 0, r_mbytes_per_sec: 0, w_mbytes_per_sec: 0 });
    const r = await burst(b, IoType.Read, 800, 4 * KiB);
    expect(r.results.every((x) => x === 0)).toBe(true);
    expect(r.order).toEqual([...r.order].sort((x, y) => x - y));
    // 800 I/Os at 2000/s: 0.4 s, less the 1 ms of allowance a new limit starts with.
    expect(r.ms).toBeGreaterThan(360);
    expect(r.ms).toBeLessThan(700); // late timers lose no allowance: only the last one adds
    expect(b.stat.numReadOps).toBe(800);
  });

  it('holds bytes to w_mbytes_per_sec and lets READ and FLUSH by', async () => {
    b = createMallocBdev({ name: 'q1', blockSize: 512, numBlocks: 16384 });
    b.setQosLimits({ w_mbytes_per_sec: 4 });
    const writes = burst(b, IoType.Write, 32, 64 * KiB); // 2 MiB at 4 MiB/s: 0.5 s
    const t0 = performance.now();
    expect((await run(b, IoType.Read, 0, 64 * KiB)).result).toBe(0);
    expect((await run(b, IoType.Flush, 0, 0)).result).toBe(0);
    expect(performance.now() - t0).toBeLessThan(100);
    expect(b.qosHeld).toBeGreaterThan(0);
    const w = await writes;
    expect(w.results.every((x) => x === 0)).toBe(true);
    expect(w.ms).toBeGreaterThan(420);
    expect(w.ms).toBeLessThan(850);
  });

  it('lets held I/O go at once when the limits are removed', async () => {
    b = createMallocBdev({ name: 'q2', blockSize: 512, numBlocks: 8192 });
    b.setQosLimits({ rw_ios_per_sec: 1000 });
    const r = burst(b, IoType.Read, 500, 4 * KiB); // 0.5 s at the limit
    await new Promise((res) => setTimeout(res, 20));
    expect(b.qosHeld).toBeGreaterThan(400);
    b.setQosLimits({ rw_ios_per_sec: 0 });
    expect(b.qosHeld).toBe(0);
    const done = await r;
    expect(done.ms).toBeLessThan(200);
    expect(b.qosLimits.rw_ios_per_sec).toBe(0);
  });

  it('close() starts what is held and waits for it', async () => {
    b = createMallocBdev({ name: 'q3', blockSize: 512, numBlocks: 8192 });
    b.setQosLimits({ rw_ios_per_sec: 1000, rw_mbytes_per_sec: 1 });
    const r = burst(b, IoType.Write, 200, 4 * KiB);
    await new Promise((res) => setTimeout(res, 10));
    const t0 = performance.now();
    await b.close();
    expect(performance.now() - t0).toBeLessThan(150);
    expect((await r).results.every((x) => x === 0)).toBe(true);
  });
});
