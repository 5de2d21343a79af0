import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { pino } from 'pino';
import { aioContexts, hogAioContexts } from '../helpers/aio.js';
import path from 'node:path';
import { constants } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAioBdev } from '../../src/modules/aio/aio.js';
import type { Bdev } from '../../src/bdev/bdev.js';
import { IoFlag, IoType } from '../../src/bdev/types.js';
import { AioMaxNrError, InvalidBdevError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { pattern, readBytes, run, writeBytes } from '../helpers/bdev.js';
import { aliveAfterGc } from '../helpers/gc.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';

const E = constants.errno;
const MiB = 1024 * 1024;

function aioNr(): number {
  return aioContexts();
}

describe('AIO bdev', () => {
  let dir: string;
  let bdev: Bdev | null = null;
  const log = silentLogger();
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(async () => {
    await bdev?.close();
    bdev = null;
    rmrf(dir);
  });

  it('creates a missing file sparse when a size is given, and refuses without one', () => {
    const f = path.join(dir, 'a.img');
    expect(() => createAioBdev({ filename: f, name: 'a', log })).toThrow(/give a size/);
    bdev = createAioBdev({ filename: f, name: 'a', size: 64 * MiB, log });
    expect(fs.statSync(f).size).toBe(64 * MiB);
    expect(fs.statSync(f).blocks).toBeLessThan(64); // sparse: almost nothing allocated
    expect(bdev.blockSize).toBe(512);
    expect(bdev.numBlocks).toBe((64 * MiB) / 512);
  });

  it('a closed bdev can be garbage-collected: its native engine lets go of it', async () => {
    const open = async (i: number): Promise<WeakRef<Bdev>> => {
      const b = createAioBdev({ filename: path.join(dir, `g${i}.img`), name: `g${i}`, size: 8 * MiB, log });
      await writeBytes(b, 0, pattern(4096, i));
      await b.close();
      return new WeakRef(b);
    };
    expect(await aliveAfterGc([await open(0), await open(1), await open(2)])).toBe(0);
  });

  it('is real kernel AIO on an O_DIRECT fd', async () => {
    const before = aioNr();
    bdev = createAioBdev({ filename: path.join(dir, 'a.img'), name: 'a', size: 8 * MiB, log });
    expect(aioNr()).toBeGreaterThan(before);
    const info = bdev.driver.info() as { aio: { o_direct: boolean } };
    expect(info.aio.o_direct).toBe(true);
    const fds = fs.readdirSync('/proc/self/fd');
    const flags = fds
      .map((fd) => {
        try {
          return fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
        } catch {
          return '';
        }
      })
      .filter((t) => (parseInt(/flags:\s+(\d+)/.exec(t)?.[1] ?? '0', 8) & 0o40000) !== 0);
    expect(flags.length).toBeGreaterThan(0);
    await bdev.close();
    bdev = null;
    expect(aioNr()).toBe(before);
  });

  it('reads back patterns at several offsets, the first and the last block', async () => {
    bdev = createAioBdev({ filename: path.join(dir, 'a.img'), name: 'a', size: 16 * MiB, log });
    const size = bdev.sizeBytes;
    const cases: [number, number][] = [
      [0, 512],
      [4096, 4096],
      [1 * MiB + 512, 128 * 1024],
      [size - 512, 512],
      [size - 2 * MiB, 1 * MiB],
    ];
    for (const [off, len] of cases) {
      const data = pattern(len, off + 1);
      expect(await writeBytes(bdev, off, data)).toBe(0);
    }
    for (const [off, len] of cases) expect((await readBytes(bdev, off, len)).equals(pattern(len, off + 1))).toBe(true);
    // On the file itself too: the bytes really reached it.
    const fd = fs.openSync(path.join(dir, 'a.img'), 'r');
    const b = Buffer.alloc(512);
    fs.readSync(fd, b, 0, 512, size - 512);
    fs.closeSync(fd);
    expect(b.equals(pattern(512, size - 512 + 1))).toBe(true);
  });

  it('fails out-of-bounds and unaligned I/O with EINVAL, and writes to a readonly bdev with EROFS', async () => {
    const f = path.join(dir, 'a.img');
    bdev = createAioBdev({ filename: f, name: 'a', size: 1 * MiB, log });
    expect((await run(bdev, IoType.Read, 1 * MiB, 512)).result).toBe(-E.EINVAL);
    expect((await run(bdev, IoType.Read, 1 * MiB - 512, 1024)).result).toBe(-E.EINVAL);
    expect((await run(bdev, IoType.Write, 100, 512)).result).toBe(-E.EINVAL);
    expect((await run(bdev, IoType.Read, 0, 0)).result).toBe(-E.EINVAL);
    await bdev.close();
    bdev = createAioBdev({ filename: f, name: 'ro', readonly: true, log });
    expect((await run(bdev, IoType.Write, 0, 512)).result).toBe(-E.EROFS);
    expect((await run(bdev, IoType.Read, 0, 512)).result).toBe(0);
  });

  it('completes each of 512 concurrent I/Os exactly once (more than the queue depth)', async () => {
    bdev = createAioBdev({ filename: path.join(dir, 'a.img'), name: 'a', size: 8 * MiB, queueDepth: 32, log });
    const b = bdev;
    const res = await Promise.all(
      Array.from({ length: 512 }, (_, i) => run(b, i % 2 ? IoType.Read : IoType.Write, (i % 2048) * 4096, 4096)),
    );
    expect(res.every((r) => r.result === 0 && r.calls === 1)).toBe(true);
    expect(b.stat.numReadOps + b.stat.numWriteOps).toBe(512);
  });

  it('flushes (FDSYNC iocb) and FUA writes', async () => {
    bdev = createAioBdev({ filename: path.join(dir, 'a.img'), name: 'a', size: 1 * MiB, log });
    expect(await writeBytes(bdev, 0, pattern(4096, 7), true)).toBe(0);
    expect((await run(bdev, IoType.Flush, 0, 0)).result).toBe(0);
    expect(bdev.stat.numFlushOps).toBe(1);
  });

  it('trims to holes and zeroes ranges, with and without NO_HOLE', async () => {
    const f = path.join(dir, 'a.img');
    bdev = createAioBdev({ filename: f, name: 'a', size: 4 * MiB, log });
    expect(await writeBytes(bdev, 0, pattern(4 * MiB, 3))).toBe(0);
    const full = fs.statSync(f).blocks;
    expect((await run(bdev, IoType.Unmap, 0, 2 * MiB)).result).toBe(0);
    expect(fs.statSync(f).blocks).toBeLessThan(full);
    expect((await run(bdev, IoType.WriteZeroes, 2 * MiB, 1 * MiB, { flags: IoFlag.NoHole })).result).toBe(0);
    expect((await readBytes(bdev, 2 * MiB, 1 * MiB)).every((x) => x === 0)).toBe(true);
    expect((await run(bdev, IoType.WriteZeroes, 3 * MiB, 4096)).result).toBe(0);
    expect((await readBytes(bdev, 3 * MiB, 4096)).every((x) => x === 0)).toBe(true);
    expect((await readBytes(bdev, 3 * MiB + 4096, 4096)).equals(pattern(4 * MiB, 3).subarray(3 * MiB + 4096, 3 * MiB + 8192))).toBe(true);
  });

  it('validates block sizes and rounds a ragged size down', () => {
    const f = path.join(dir, 'r.img');
    fs.writeFileSync(f, Buffer.alloc(4096 * 3 + 100));
    expect(() => createAioBdev({ filename: f, name: 'r', blockSize: 1000, log })).toThrow(InvalidBdevError);
    expect(() => createAioBdev({ filename: f, name: 'r', blockSize: 256, log })).toThrow(/power of two of at least 512/);
    bdev = createAioBdev({ filename: f, name: 'r', blockSize: 4096, log });
    expect(bdev.numBlocks).toBe(3);
  });

  it('names fs.aio-max-nr when io_setup runs out of contexts', async () => {
    // Another process takes the whole system limit; the first AIO bdev here needs a context.
    const fdsBefore = fs.readdirSync('/proc/self/fd').length;
    const hog = await hogAioContexts();
    let err: unknown;
    try {
      bdev = createAioBdev({ filename: path.join(dir, 'a.img'), name: 'a', size: MiB, log });
    } catch (e) {
      err = e;
    } finally {
      await hog.release();
    }
    expect(err).toBeInstanceOf(AioMaxNrError);
    expect((err as Error).message).toMatch(
      /^io_setup\(128\) failed: the kernel's AIO context limit is exhausted \(aio-nr \d+ of fs\.aio-max-nr \d+ in use\); raise it with "sysctl -w fs\.aio-max-nr=\d+" or use a smaller --queue-depth$/,
    );
    expect(fs.readdirSync('/proc/self/fd').length).toBe(fdsBefore); // the image fd was closed again
  });

  // tmpfs refuses O_DIRECT before Linux 6.6 (the kernel test VM runs 6.1 and covers the fallback
  // there); on newer kernels this checks that the bdev reports what the file system gave it.
  it('serves tmpfs files, buffered where O_DIRECT is refused, and still round-trips', async () => {
    const shm = fs.mkdtempSync('/dev/shm/aionbd-test-');
    try {
      const probe = path.join(shm, 'probe');
      fs.writeFileSync(probe, '');
      let directOk = true;
      try {
        fs.closeSync(fs.openSync(probe, fs.constants.O_RDWR | fs.constants.O_DIRECT));
      } catch {
        directOk = false;
      }
      bdev = createAioBdev({ filename: path.join(shm, 't.img'), name: 't', size: MiB, log });
      expect((bdev.driver.info() as { aio: { o_direct: boolean } }).aio.o_direct).toBe(directOk);
      expect(await writeBytes(bdev, 4096, pattern(8192, 11))).toBe(0);
      expect((await readBytes(bdev, 4096, 8192)).equals(pattern(8192, 11))).toBe(true);
      expect((await run(bdev, IoType.Flush, 0, 0)).result).toBe(0);
      expect((await run(bdev, IoType.WriteZeroes, 4096, 4096, { flags: IoFlag.NoHole })).result).toBe(0);
      expect((await readBytes(bdev, 4096, 4096)).every((x) => x === 0)).toBe(true);
      await bdev.close();
      bdev = null;
    } finally {
      rmrf(shm);
    }
  });

  const root = process.getuid?.() === 0;
  it.skipIf(!root && process.env['CI'] !== 'true')('serves a block device (loop device), detecting its sector size', async () => {
    const { execFileSync } = await import('node:child_process');
    const f = path.join(dir, 'loop.img');
    fs.writeFileSync(f, Buffer.alloc(0));
    fs.truncateSync(f, 8 * MiB);
    const dev = execFileSync('losetup', ['--find', '--show', '--sector-size', '4096', f], { encoding: 'utf8' }).trim();
    try {
      bdev = createAioBdev({ filename: dev, name: 'blk', log });
      expect(bdev.blockSize).toBe(4096);
      expect(bdev.sizeBytes).toBe(8 * MiB);
      expect(() => createAioBdev({ filename: dev, name: 'blk2', blockSize: 512, log })).toThrow(/below the 4096-byte sectors/);
      expect(await writeBytes(bdev, 8 * MiB - 4096, pattern(4096, 5), true)).toBe(0);
      expect((await readBytes(bdev, 8 * MiB - 4096, 4096)).equals(pattern(4096, 5))).toBe(true);
      expect((await run(bdev, IoType.WriteZeroes, 0, 8192)).result).toBe(0);
      expect((await run(bdev, IoType.Flush, 0, 0)).result).toBe(0);
      await bdev.close();
      bdev = null;
    } finally {
      execFileSync('losetup', ['-d', dev]);
    }
    const onDisk = fs.readFileSync(f);
    expect(onDisk.subarray(8 * MiB - 4096).equals(pattern(4096, 5))).toBe(true);
  });
});

// Issue 12, item 5: failures at creation are one clear error and leave nothing behind.
describe('AIO bdev creation failures', () => {
  let dir: string;
  const log = silentLogger();
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(() => {
    rmrf(dir);
  });

  function warnings(): { log: ReturnType<typeof silentLogger>; lines: string[] } {
    const lines: string[] = [];
    const log = pino(
      { level: 'warn' },
      {
        write: (s: string) => {
          lines.push(s);
        },
      },
    );
    return { log, lines };
  }

  it('checks block sizes exactly past 32 bits, and caps them at 64 KiB', () => {
    const f = path.join(dir, 'big.img');
    fs.closeSync(fs.openSync(f, 'w'));
    fs.truncateSync(f, 16 * 2 ** 30); // sparse: large enough for the biggest block asked for below
    for (const bs of [2 ** 31, 2 ** 32, 12 * 2 ** 30, 3 * 2 ** 32, 128 * 1024, 2 ** 53]) {
      expect(() => createAioBdev({ filename: f, name: 'b', blockSize: bs, log }), String(bs)).toThrow(
        /must be a power of two of at least 512 and at most 65536/,
      );
    }
    const b = createAioBdev({ filename: f, name: 'b', blockSize: 65536, log });
    expect(b.blockSize).toBe(65536);
    return b.close();
  });

  it('a size below one block is refused before the file is created', () => {
    const f = path.join(dir, 'new', 'deeper', 'tiny.img');
    expect(() => createAioBdev({ filename: f, name: 't', size: 100, log })).toThrow(/size 100 is smaller than one 512-byte block/);
    expect(() => createAioBdev({ filename: f, name: 't', size: 4096, blockSize: 8192, log })).toThrow(/smaller than one 8192-byte block/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('removes the file and the directories it made when the bdev cannot be built after all', async () => {
    // io_setup fails only after the file exists: another process takes every AIO context first.
    const hog = await hogAioContexts();
    const f = path.join(dir, 'a', 'b', 'x.img');
    try {
      expect(() => createAioBdev({ filename: f, name: 'x', size: MiB, log })).toThrow(AioMaxNrError);
    } finally {
      await hog.release();
    }
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a parent directory that cannot be made fails at once (no mkdir loop under /proc)', () => {
    const t0 = Date.now();
    expect(() => createAioBdev({ filename: '/proc/nope/disk0.img', name: 'd', size: MiB, log })).toThrow(
      /^cannot create \/proc\/nope: no such file or directory$/,
    );
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(fs.existsSync('/proc/nope')).toBe(false);
  });

  it('/dev/null and a FIFO are refused for what they are, with no O_DIRECT warning and without blocking', () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    for (const [f, kind] of [
      ['/dev/null', 'character device'],
      [fifo, 'fifo'],
    ] as const) {
      const w = warnings();
      const t0 = Date.now();
      expect(() => createAioBdev({ filename: f, name: 'n', readonly: true, log: w.log })).toThrow(
        `${f} is not a regular file or a block device (it is a ${kind})`,
      );
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(w.lines.join('')).not.toMatch(/O_DIRECT/);
    }
  });
});
