// The io_uring engine: one per process beside the AIO engine, shared by every uring bdev, each
// bdev's I/O in its own file, FUA and flush through the ring, nothing left open after the last
// bdev; and the one error a kernel without io_uring (or refusing it) gives.
import fs from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAioBdev } from '../../src/modules/aio/aio.js';
import { AIO_ENGINE, engineStats } from '../../src/modules/aio/aio_engine.js';
import { URING_ENGINE, uringSetupError } from '../../src/modules/uring/engine.js';
import { createUringBdev } from '../../src/modules/uring/uring.js';
import type { Bdev } from '../../src/bdev/bdev.js';
import { IoType } from '../../src/bdev/types.js';
import { SystemError, UringUnavailableError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { pattern, readBytes, run, writeBytes } from '../helpers/bdev.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';

const E = constants.errno;
const MiB = 1 << 20;
const log = silentLogger();

/** The error native/os_error.cc throws for io_uring_setup failing with `errno`. */
function osError(errno: number, code: string, strerror: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`io_uring_setup: ${strerror}`), { errno: -errno, code, syscall: 'io_uring_setup' });
}

describe('io_uring_setup refused', () => {
  it('ENOSYS and EPERM are one typed error naming the reason and kernel.io_uring_disabled', () => {
    const nosys = uringSetupError(osError(E.ENOSYS, 'ENOSYS', 'Function not implemented'), 128, 0);
    expect(nosys).toBeInstanceOf(UringUnavailableError);
    expect(nosys.message).toBe('io_uring is not available: Function not implemented (kernel.io_uring_disabled=0)');
    expect(nosys).toMatchObject({ code: 'AIONBD_URING_UNAVAILABLE', errno: E.ENOSYS, disabled: 0 });

    const perm = uringSetupError(osError(E.EPERM, 'EPERM', 'Operation not permitted'), 128, 2);
    expect(perm).toBeInstanceOf(UringUnavailableError);
    expect(perm.message).toBe('io_uring is not available: Operation not permitted (kernel.io_uring_disabled=2)');
    expect(perm).toMatchObject({ errno: E.EPERM, disabled: 2 });

    const older = uringSetupError(osError(E.ENOSYS, 'ENOSYS', 'Function not implemented'), 128, null);
    expect(older.message).toBe('io_uring is not available: Function not implemented (this kernel has no kernel.io_uring_disabled)');
  });

  it('anything else is a SystemError of io_uring_setup', () => {
    const e = uringSetupError(osError(E.ENOMEM, 'ENOMEM', 'Cannot allocate memory'), 4096, 0);
    expect(e).toBeInstanceOf(SystemError);
    expect(e).toMatchObject({ message: 'io_uring_setup(4096) failed: Cannot allocate memory', errno: E.ENOMEM });
  });
});

describe('the shared io_uring engine', () => {
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

  const make = (i: number, queueDepth?: number): Bdev => {
    const b = createUringBdev({ filename: path.join(dir, `u${i}.img`), name: `u${i}`, size: MiB, queueDepth, log });
    bdevs.push(b);
    return b;
  };
  const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

  it("serves several bdevs beside the AIO engine, each one's writes in its own file, and closes its rings with the last", async () => {
    const fdsBefore = openFds();
    const aio = createAioBdev({ filename: path.join(dir, 'a.img'), name: 'a', size: MiB, log });
    bdevs.push(aio);
    const us = Array.from({ length: 4 }, (_, i) => make(i));
    expect(engineStats(URING_ENGINE)).toMatchObject({ bdevs: 4, inflight: 0 });
    expect(engineStats(AIO_ENGINE)).toMatchObject({ bdevs: 1 });
    // One macrotask: the writes of every bdev go out in one batch.
    const done = us.map((b, i) => writeBytes(b, 8192, pattern(8192, 7 + i)));
    expect((await Promise.all(done)).every((r) => r === 0)).toBe(true);
    for (let i = 0; i < us.length; i++) {
      const got = Buffer.alloc(8192);
      const fd = fs.openSync(path.join(dir, `u${i}.img`), 'r');
      fs.readSync(fd, got, 0, 8192, 8192);
      fs.closeSync(fd);
      expect(got.equals(pattern(8192, 7 + i)), `file of u${i}`).toBe(true);
      expect((await readBytes(us[i] as Bdev, 8192, 8192)).equals(pattern(8192, 7 + i))).toBe(true);
    }
    for (const b of bdevs.splice(1)) await b.close();
    expect(engineStats(URING_ENGINE)).toBeNull();
    expect(engineStats(AIO_ENGINE)).toMatchObject({ bdevs: 1 });
    await bdevs.splice(0)[0]?.close();
    expect(openFds()).toBe(fdsBefore); // image fds, the rings and the eventfd
  });

  it('FUA writes and flushes complete through the ring; more I/O than the cap waits, none fails', async () => {
    const b = make(0, 4);
    expect(await writeBytes(b, 4096, pattern(4096, 3), true)).toBe(0); // FUA
    expect((await run(b, IoType.Flush, 0, 0)).result).toBe(0);
    const all = Array.from({ length: 200 }, (_, i) => run(b, IoType.Read, (i % 256) * 4096, 4096));
    expect(engineStats(URING_ENGINE)?.inflight).toBeLessThanOrEqual(4);
    const res = await Promise.all(all);
    expect(res.every((r) => r.result === 0 && r.calls === 1)).toBe(true);
    expect((await readBytes(b, 4096, 4096)).equals(pattern(4096, 3))).toBe(true);
  });
});
