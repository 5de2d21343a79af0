// One bdev conformance suite, run against every module and stack: the checks of SPDK's bdevio
// (patterns at the first and last block, sizes from one block to the whole device, past-end
// and misaligned requests, overlapping writes, zeroes, flush, reset) plus the contract of our
// bdev layer (exactly-once completion, never inside submit, close waits for in-flight I/O).
import { constants } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Bdev } from '../../src/bdev/bdev.js';
import { bufferPool } from '../../src/bdev/buffers.js';
import { BdevRegistry } from '../../src/bdev/registry.js';
import { IoType, newIo, type BdevIo } from '../../src/bdev/types.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';

const E = constants.errno;
const MiB = 2 ** 20;

export interface Target {
  module: string;
  /** Builds the bdev under test in reg (with whatever it stacks on), in a fresh dir. */
  create(reg: BdevRegistry, dir: string, blockSize: number, numBlocks: number): Bdev | Promise<Bdev>;
  supports: { unmap: boolean; writeZeroes: boolean; reset: boolean; flush: boolean };
  /** Block sizes to run the suite with (default 512 and 4096). */
  blockSizes?: number[];
  /** Writes succeed and are dropped: every read returns zeroes (null). */
  discardsWrites?: boolean;
}

interface Done {
  result: number;
  calls: number;
}

/** Submits one I/O; resolves after a macrotask so that a late second completion is counted too. */
export function submit(bdev: Bdev, type: IoType, offset: number, length: number, buf: Buffer | null = null): Promise<Done> {
  return new Promise((resolve) => {
    let calls = 0;
    const io = newIo((x) => {
      calls++;
      setImmediate(() => resolve({ result: x.result, calls }));
    });
    io.type = type;
    io.offset = offset;
    io.length = length;
    io.buf = buf ?? (type === IoType.Read || type === IoType.Write ? bufferPool().get(Math.max(length, 1)) : null);
    bdev.submit(io);
  });
}

export async function write(bdev: Bdev, offset: number, data: Buffer): Promise<number> {
  const buf = bufferPool().get(data.length);
  data.copy(buf);
  const r = await submit(bdev, IoType.Write, offset, data.length, buf);
  bufferPool().put(buf);
  expect(r.calls).toBe(1);
  return r.result;
}

export async function read(bdev: Bdev, offset: number, length: number): Promise<Buffer> {
  // Poisoned first: a module that leaves the buffer as it was is caught.
  const buf = bufferPool().get(length).fill(0xee, 0, length);
  const r = await submit(bdev, IoType.Read, offset, length, buf);
  expect(r.calls).toBe(1);
  expect(r.result).toBe(0);
  const out = Buffer.from(buf.subarray(0, length));
  bufferPool().put(buf);
  return out;
}

export function fill(len: number, byte: number): Buffer {
  return Buffer.alloc(len, byte);
}

/** Bytes that differ at every offset, so a misplaced block is caught. */
export function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const BLOCKS_BYTES = 8 * MiB;

export function bdevConformance(t: Target): void {
  for (const bs of t.blockSizes ?? [512, 4096]) {
    describe(`bdev conformance: ${t.module}, ${bs}-byte blocks`, () => {
      let reg: BdevRegistry;
      let dir: string;
      let bdev: Bdev;
      const nblocks = BLOCKS_BYTES / bs;
      /** What reading back `written` must give. */
      const stored = (written: Buffer): Buffer => (t.discardsWrites === true ? Buffer.alloc(written.length) : written);

      beforeEach(async () => {
        reg = new BdevRegistry();
        dir = tmpDir();
        bdev = await t.create(reg, dir, bs, nblocks);
      });
      afterEach(async () => {
        await reg.closeAll();
        rmrf(dir);
      });

      it('has the requested geometry', () => {
        expect(bdev.blockSize).toBe(bs);
        expect(bdev.numBlocks).toBe(nblocks);
      });

      it('reads back one block at offset 0, 8 blocks at block 8, and 128 KiB + 1 block at block 2', async () => {
        const cases: [number, number][] = [
          [0, bs],
          [8 * bs, 8 * bs],
          [2 * bs, 128 * 1024 + bs],
        ];
        for (const [off, len] of cases) {
          const data = fill(len, 0xa3);
          expect(await write(bdev, off, data)).toBe(0);
          expect((await read(bdev, off, len)).equals(stored(data))).toBe(true);
        }
      });

      it('keeps distinct patterns at the first and the last block', async () => {
        const last = bdev.sizeBytes - bs;
        expect(await write(bdev, 0, pattern(bs, 1))).toBe(0);
        expect(await write(bdev, last, pattern(bs, 2))).toBe(0);
        expect((await read(bdev, 0, bs)).equals(stored(pattern(bs, 1)))).toBe(true);
        expect((await read(bdev, last, bs)).equals(stored(pattern(bs, 2)))).toBe(true);
      });

      it('reads back every size from one block to the whole device, at the start and the end', async () => {
        for (let len = bs; len <= bdev.sizeBytes; len *= 4) {
          for (const off of [0, bdev.sizeBytes - len]) {
            const data = pattern(len, len + off);
            expect(await write(bdev, off, data)).toBe(0);
            expect((await read(bdev, off, len)).equals(stored(data)), `${len} bytes at ${off}`).toBe(true);
          }
        }
      });

      it('lets the second of two overlapping writes win', async () => {
        expect(await write(bdev, 0, fill(2 * bs, 0xaa))).toBe(0);
        expect(await write(bdev, bs, fill(2 * bs, 0xbb))).toBe(0);
        expect((await read(bdev, 0, 3 * bs)).equals(stored(Buffer.concat([fill(bs, 0xaa), fill(2 * bs, 0xbb)])))).toBe(true);
      });

      it('fails requests past the end, misaligned or empty with EINVAL and changes nothing', async () => {
        expect(await write(bdev, bdev.sizeBytes - bs, fill(bs, 0x11))).toBe(0);
        const bad: [number, number][] = [
          [bdev.sizeBytes - bs, 2 * bs],
          [bdev.sizeBytes, bs],
          [2 ** 53, bs],
          [0, bs - 1],
          [1, bs],
          [0, 0],
        ];
        for (const [off, len] of bad) {
          for (const type of [IoType.Read, IoType.Write]) {
            const r = await submit(bdev, type, off, len, bufferPool().get(Math.max(len, 2 * bs)));
            expect(r, `${type} ${len} at ${off}`).toEqual({ result: -E.EINVAL, calls: 1 });
          }
        }
        expect((await read(bdev, bdev.sizeBytes - bs, bs)).equals(stored(fill(bs, 0x11)))).toBe(true);
        const ok = await submit(bdev, IoType.Read, bdev.sizeBytes - bs, bs);
        expect(ok.result).toBe(0);
      });

      it.runIf(t.supports.writeZeroes)('reads zeroes after WRITE_ZEROES of one block, 1 MiB, 3 MiB and 3.5 MiB', async () => {
        for (const len of [bs, MiB, 3 * MiB, 3.5 * MiB]) {
          expect(await write(bdev, bs, fill(len, 0x5a))).toBe(0);
          expect((await submit(bdev, IoType.WriteZeroes, bs, len)).result).toBe(0);
          expect((await read(bdev, bs, len)).equals(fill(len, 0))).toBe(true);
        }
        // Its neighbours are untouched.
        expect(await write(bdev, 0, fill(bs, 0x77))).toBe(0);
        expect((await submit(bdev, IoType.WriteZeroes, bs, bs)).result).toBe(0);
        expect((await read(bdev, 0, bs)).equals(stored(fill(bs, 0x77)))).toBe(true);
      });

      it.runIf(t.supports.unmap)('reads zeroes after UNMAP', async () => {
        const len = 1 * MiB + 3 * bs;
        expect(await write(bdev, 5 * bs, pattern(len, 9))).toBe(0);
        expect((await submit(bdev, IoType.Unmap, 5 * bs, len)).result).toBe(0);
        expect((await read(bdev, 5 * bs, len)).equals(fill(len, 0))).toBe(true);
      });

      it('answers FLUSH with success when it advertises FLUSH, else ENOTSUP', async () => {
        expect(bdev.supports(IoType.Flush)).toBe(t.supports.flush);
        expect(await write(bdev, 0, fill(bs, 1))).toBe(0);
        expect((await submit(bdev, IoType.Flush, 0, 0)).result).toBe(t.supports.flush ? 0 : -E.ENOTSUP);
      });

      it('answers RESET with success when it advertises RESET, else ENOTSUP', async () => {
        expect(bdev.supports(IoType.Reset)).toBe(t.supports.reset);
        expect((await submit(bdev, IoType.Reset, 0, 0)).result).toBe(t.supports.reset ? 0 : -E.ENOTSUP);
      });

      it('completes each of 256 concurrent I/Os exactly once, with the right data', async () => {
        const n = 256;
        const writes = Array.from({ length: n }, (_, i) => write(bdev, i * 2 * bs, pattern(2 * bs, 100 + i)));
        expect(await Promise.all(writes)).toEqual(Array<number>(n).fill(0));
        const reads = await Promise.all(Array.from({ length: n }, (_, i) => read(bdev, i * 2 * bs, 2 * bs)));
        reads.forEach((b, i) => {
          expect(b.equals(stored(pattern(2 * bs, 100 + i))), `block pair ${i}`).toBe(true);
        });
      });

      it('never completes inside submit()', async () => {
        let inSubmit = false;
        let completedInside = 0;
        const all: Promise<void>[] = [];
        for (const type of [IoType.Read, IoType.Write, IoType.Flush, IoType.Read]) {
          all.push(
            new Promise<void>((resolve) => {
              const io: BdevIo = newIo(() => {
                if (inSubmit) completedInside++;
                resolve();
              });
              io.type = type;
              io.offset = type === IoType.Flush ? 0 : bs;
              io.length = type === IoType.Flush ? 0 : bs;
              // The last one is past the end: refused at submit, and still not answered inside it.
              if (all.length === 3) io.offset = bdev.sizeBytes;
              io.buf = bufferPool().get(bs);
              inSubmit = true;
              bdev.submit(io);
              inSubmit = false;
            }),
          );
        }
        await Promise.all(all);
        expect(completedInside).toBe(0);
      });

      it('refuses a second submit of an I/O still pending', () => {
        const io = newIo(() => undefined);
        io.type = IoType.Read;
        io.offset = 0;
        io.length = bs;
        io.buf = bufferPool().get(bs);
        bdev.submit(io);
        expect(() => bdev.submit(io)).toThrow(/submitted while pending/);
      });

      it('close() resolves only after in-flight I/O completed, and refuses new I/O with ESHUTDOWN', async () => {
        let completed = 0;
        const n = 32;
        const done: Promise<number>[] = [];
        for (let i = 0; i < n; i++) {
          done.push(
            new Promise((resolve) => {
              const io = newIo((x) => {
                completed++;
                resolve(x.result);
              });
              io.type = IoType.Write;
              io.offset = i * bs;
              io.length = bs;
              io.buf = bufferPool().get(bs);
              bdev.submit(io);
            }),
          );
        }
        // The bdev under test is the topmost: its bases stay open until afterEach.
        const closing = bdev.close();
        const late = await submit(bdev, IoType.Read, 0, bs);
        expect(late.result).toBe(-108); // ESHUTDOWN
        await closing;
        expect(completed).toBe(n);
        expect(await Promise.all(done)).toEqual(Array<number>(n).fill(0));
        expect(bdev.outstanding).toBe(0);
      });

      it('counts successful reads and writes in its statistics', async () => {
        const before = { r: bdev.stat.numReadOps, w: bdev.stat.numWriteOps, br: bdev.stat.bytesRead };
        expect(await write(bdev, 0, fill(4 * bs, 3))).toBe(0);
        await read(bdev, 0, 4 * bs);
        expect(bdev.stat.numWriteOps).toBe(before.w + 1);
        expect(bdev.stat.numReadOps).toBe(before.r + 1);
        expect(bdev.stat.bytesRead).toBe(before.br + 4 * bs);
        expect(bdev.stat.read.max).toBeGreaterThan(0);
        expect(bdev.stat.queueDepth).toBe(0);
      });
    });
  }
}
