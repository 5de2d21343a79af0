// The process's one AIO engine, shared by every AIO bdev: a few kernel contexts for many bdevs,
// each bdev's own file and cap, fair turns when slots run out, and everything given back when
// the last bdev closes.
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAioBdev } from '../../src/modules/aio/aio.js';
import { engineStats, nextContextEvents, SHARED_EVENTS } from '../../src/modules/aio/aio_engine.js';
import { AioQueue } from '../../src/modules/aio/aio_queue.js';
import type { Bdev } from '../../src/bdev/bdev.js';
import { bufferPool } from '../../src/bdev/buffers.js';
import { IoType, newIo } from '../../src/bdev/types.js';
import { silentLogger } from '../../src/log.js';
import { aioContexts, hogAioContexts } from '../helpers/aio.js';
import { pattern, readBytes, run, writeBytes } from '../helpers/bdev.js';
import { REPO_ROOT, requireBuilt } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';

const MiB = 1 << 20;
const log = silentLogger();

function queueOf(b: Bdev): AioQueue {
  const q: unknown = Reflect.get(b.driver, 'queue');
  if (!(q instanceof AioQueue)) throw new Error(`${b.name} is not an AIO bdev`);
  return q;
}
function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

describe('sizing of the shared engine', () => {
  it('doubles up to SHARED_EVENTS for the sum of the caps, or to the largest single cap', () => {
    let cap = 0;
    const steps: number[] = [];
    for (let bdevs = 1; bdevs <= 100; bdevs++) {
      const add = nextContextEvents(cap, bdevs * 128, 128);
      if (add > 0) {
        steps.push(add);
        cap += add;
      }
    }
    expect(steps).toEqual([128, 128, 256, 512, 1024, 2048]);
    expect(cap).toBe(SHARED_EVENTS);
    expect(nextContextEvents(SHARED_EVENTS, SHARED_EVENTS * 100, 128)).toBe(0);
    expect(nextContextEvents(SHARED_EVENTS, SHARED_EVENTS + 65536, 65536)).toBe(65536 - SHARED_EVENTS);
    expect(nextContextEvents(0, 65536, 65536)).toBe(65536);
  });
});

describe('the shared AIO engine', () => {
  let dir: string;
  let bdevs: Bdev[] = [];
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(async () => {
    for (const b of bdevs) await b.close();
    bdevs = [];
    rmrf(dir);
  });

  const make = (i: number, queueDepth?: number, l = log): Bdev => {
    const b = createAioBdev({ filename: path.join(dir, `d${i}.img`), name: `d${i}`, size: MiB, queueDepth, log: l });
    bdevs.push(b);
    return b;
  };

  it('serves 40 bdevs from a few contexts and gives every one back when the last closes', async () => {
    const ctxBefore = aioContexts();
    const fdsBefore = openFds();
    for (let i = 0; i < 40; i++) make(i);
    expect(engineStats()).toMatchObject({ capacity: SHARED_EVENTS, contexts: 6, inflight: 0, bdevs: 40 });
    expect(aioContexts() - ctxBefore).toBe(6);
    expect(openFds() - fdsBefore).toBe(41); // one fd per image, one eventfd for them all
    await Promise.all(bdevs.map((b, i) => writeBytes(b, 4096 * i, pattern(4096, i))));
    for (const [i, b] of bdevs.entries()) expect((await readBytes(b, 4096 * i, 4096)).equals(pattern(4096, i))).toBe(true);
    for (const b of bdevs.splice(1)) await b.close();
    expect(engineStats()?.bdevs).toBe(1);
    expect(aioContexts() - ctxBefore).toBe(6); // kept while a bdev is open
    await bdevs.splice(0)[0]?.close();
    expect(engineStats()).toBeNull();
    expect(aioContexts()).toBe(ctxBefore);
    expect(openFds()).toBe(fdsBefore);
  });

  it("writes of several bdevs in one io_submit reach each one's own file", async () => {
    const bs = Array.from({ length: 8 }, (_, i) => make(i));
    // One macrotask: every write goes out in the same batch.
    const done = bs.map((b, i) => writeBytes(b, 8192, pattern(8192, 100 + i)));
    expect((await Promise.all(done)).every((r) => r === 0)).toBe(true);
    for (let i = 0; i < bs.length; i++) {
      const fd = fs.openSync(path.join(dir, `d${i}.img`), 'r');
      const got = Buffer.alloc(8192);
      fs.readSync(fd, got, 0, 8192, 8192);
      fs.closeSync(fd);
      expect(got.equals(pattern(8192, 100 + i)), `file of d${i}`).toBe(true);
    }
  });

  it('keeps each bdev to its own cap, whatever the engine has free', async () => {
    const small = make(0, 4);
    const big = make(1);
    const all = [
      ...Array.from({ length: 64 }, (_, i) => run(small, IoType.Read, (i % 256) * 4096, 4096)),
      ...Array.from({ length: 64 }, (_, i) => run(big, IoType.Read, (i % 256) * 4096, 4096)),
    ];
    expect(queueOf(small).inflight).toBe(4);
    expect(queueOf(big).inflight).toBe(64);
    const res = await Promise.all(all);
    expect(res.every((r) => r.result === 0 && r.calls === 1)).toBe(true);
    expect(queueOf(small).inflight + queueOf(big).inflight).toBe(0);
  });

  it('when the kernel will not grow it, more bdevs share its slots in turn and no request fails', async () => {
    const warns: string[] = [];
    const wlog = pino(
      { level: 'warn' },
      {
        write: (s: string) => {
          warns.push(s);
        },
      },
    );
    const first = make(0, 8);
    const hog = await hogAioContexts();
    let b: Bdev, c: Bdev;
    try {
      b = make(1, 64, wlog);
      c = make(2, 64, wlog);
    } finally {
      await hog.release();
    }
    expect(engineStats()).toMatchObject({ capacity: 8, contexts: 1, bdevs: 3 });
    expect(warns.length).toBe(1); // once, not per bdev
    expect(warns[0]).toMatch(
      /the shared AIO engine stays at 8 slots \(io_setup\(\d+\) failed: .*\); I\/O beyond them waits for a free slot/,
    );

    // b asks first for 200, then c for 200: with 8 slots, they take turns once b's first 8 are in.
    const order: string[] = [];
    const submitMany = (x: Bdev, tag: string, k: number): Promise<number>[] =>
      Array.from(
        { length: k },
        (_, i) =>
          new Promise<number>((resolve) => {
            const io = newIo((d) => {
              order.push(tag);
              resolve(d.result);
            });
            io.type = i % 2 ? IoType.Read : IoType.Write;
            io.offset = (i % 256) * 4096;
            io.length = 4096;
            io.buf = bufferPool().get(4096);
            x.submit(io);
          }),
      );
    const results = await Promise.all([...submitMany(b, 'b', 200), ...submitMany(c, 'c', 200), ...submitMany(first, 'a', 20)]);
    expect(results.every((r) => r === 0)).toBe(true);
    const firstHundred = order.slice(0, 100);
    // Three queues in turn (b also had its first 8): a FIFO of I/O would finish all of b first.
    expect(firstHundred.filter((t) => t === 'c').length).toBeGreaterThanOrEqual(30);
    expect(firstHundred.filter((t) => t === 'b').length).toBeGreaterThanOrEqual(30);
    expect(firstHundred.filter((t) => t === 'a').length).toBe(20);
    // Closing one while the others go on, then growing again now that the kernel allows it.
    await c.close();
    bdevs = bdevs.filter((x) => x !== c);
    make(3, 64);
    expect(engineStats()?.capacity).toBeGreaterThan(8);
    expect((await run(b, IoType.Read, 0, 4096)).result).toBe(0);
  });

  it('a bdev closing while others are busy waits for its own I/O only, then lets go of its fd', async () => {
    const a = make(0),
      b = make(1);
    const aDone: number[] = [];
    const aIos = Array.from({ length: 64 }, (_, i) =>
      run(a, IoType.Write, i * 4096, 4096).then((r) => {
        aDone.push(r.result);
        return r;
      }),
    );
    const bIos = Array.from({ length: 64 }, (_, i) => run(b, IoType.Write, i * 4096, 4096));
    const fdsBefore = openFds();
    await a.close();
    bdevs = bdevs.filter((x) => x !== a);
    // Every write of a was answered before its close resolved (run() resolves a turn later).
    expect(queueOf(a).inflight).toBe(0);
    expect(openFds()).toBe(fdsBefore - 1);
    expect((await Promise.all(aIos)).every((r) => r.result === 0 && r.calls === 1)).toBe(true);
    expect((await Promise.all(bIos)).every((r) => r.result === 0 && r.calls === 1)).toBe(true);
    expect(engineStats()?.bdevs).toBe(1);
    expect(aDone).toHaveLength(64);
  });

  it('finds the completion of a lone request by spinning on the ring; never spins with AIONBD_SPIN_US=0 or without a user ring', async () => {
    const lone = async (b: Bdev): Promise<void> => {
      for (let i = 0; i < 64; i++) {
        expect(await writeBytes(b, i * 4096, pattern(4096, i))).toBe(0);
        expect((await readBytes(b, i * 4096, 4096)).equals(pattern(4096, i))).toBe(true);
      }
    };
    await lone(make(0));
    // Until it has measured both ways, every other lone request of each kind spins (32 of these
    // 128); a spin that outlasts its window, or a loop that would not sleep, finds none.
    expect(engineStats()?.spins).toBeGreaterThan(0);
    expect(engineStats()?.spinTries).toBeGreaterThanOrEqual(engineStats()?.spins ?? Number.POSITIVE_INFINITY);
    for (const env of ['AIONBD_SPIN_US', 'AIONBD_NO_USER_RING']) {
      await bdevs.splice(0)[0]?.close();
      // A context without a user-space ring cannot be looked at: a spin there could only run out its time.
      process.env[env] = env === 'AIONBD_SPIN_US' ? '0' : '1';
      try {
        make(1);
      } finally {
        delete process.env[env];
      }
      await lone(bdevs[0] as Bdev);
      expect(engineStats(), env).toMatchObject({ spins: 0, spinTries: 0 });
    }
  });

  it('reaps with io_getevents where the user-space ring is not used, over several contexts', async () => {
    process.env['AIONBD_NO_USER_RING'] = '1';
    try {
      for (let i = 0; i < 3; i++) make(i, 64);
    } finally {
      delete process.env['AIONBD_NO_USER_RING'];
    }
    expect(engineStats()).toMatchObject({ capacity: 256, contexts: 3 }); // 64, 64, 128
    expect(((bdevs[0] as (typeof bdevs)[number]).driver.info() as { aio: { user_ring: boolean } }).aio.user_ring).toBe(false);
    const res = await Promise.all(
      bdevs.flatMap((b, k) => Array.from({ length: 100 }, (_, i) => writeBytes(b, i * 4096, pattern(4096, k * 1000 + i)))),
    );
    expect(res.every((r) => r === 0)).toBe(true);
    for (const [k, b] of bdevs.entries()) expect((await readBytes(b, 99 * 4096, 4096)).equals(pattern(4096, k * 1000 + 99))).toBe(true);
  });

  it('a worker thread has an engine of its own, released when the worker ends without closing', async () => {
    requireBuilt();
    const mine = make(0);
    const ctxBefore = aioContexts();
    // The worker loads the built library: it cannot load TypeScript.
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      (async () => {
        const { createAioBdev } = await import(workerData.aio);
        const { silentLogger } = await import(workerData.log);
        const b = createAioBdev({ filename: workerData.file, name: 'w', size: 1 << 20, log: silentLogger() });
        parentPort.postMessage({ userRing: b.driver.info().aio.user_ring });
        parentPort.on('message', () => {}); // keeps the worker alive until terminate(), bdev still open
      })();`;
    const w = new Worker(code, {
      eval: true,
      workerData: {
        aio: path.join(REPO_ROOT, 'dist', 'modules', 'aio', 'aio.js'),
        log: path.join(REPO_ROOT, 'dist', 'log.js'),
        file: path.join(dir, 'w.img'),
      },
    });
    const msg = await new Promise<unknown>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(msg).toEqual({ userRing: true });
    expect(aioContexts()).toBe(ctxBefore + 1);
    await w.terminate();
    expect(aioContexts()).toBe(ctxBefore);
    expect((await run(mine, IoType.Read, 0, 4096)).result).toBe(0);
  });
});
