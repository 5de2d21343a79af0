// Command flags reach the base unchanged through every virtual bdev, and a bdev advertises over
// NBD only the flags it declares. The base is a recording driver: it keeps the bytes (so an
// lvstore can live on it) and the type, range and flags word of every I/O it receives.
import { constants } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bdev } from '../../src/bdev/bdev.js';
import { bufferPool } from '../../src/bdev/buffers.js';
import { createDelayBdev } from '../../src/modules/delay/delay.js';
import { createErrorBdev } from '../../src/modules/error/error.js';
import { Lvstores } from '../../src/modules/lvol/lvstores.js';
import { createMallocBdev } from '../../src/modules/malloc/malloc.js';
import { createPassthruBdev } from '../../src/modules/passthru/passthru.js';
import { createRaid0Bdev } from '../../src/modules/raid/raid0.js';
import { BdevRegistry } from '../../src/bdev/registry.js';
import { createSplitBdevs } from '../../src/modules/split/split.js';
import { ALL_IO_FLAGS, IoFlag, IoType, newIo, type BdevDriver, type BdevIo } from '../../src/bdev/types.js';
import { unalignedAdapter } from '../../src/bdev/unaligned.js';
import { BdevIoMisuseError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { NBD_FLAG_SEND_FAST_ZERO, NBD_FLAG_SEND_FUA, NBD_FLAG_SEND_WRITE_ZEROES } from '../../src/nbd/constants.js';
import { Export } from '../../src/nbd/export.js';
import { NbdServer } from '../../src/nbd/server.js';
import { pattern, run } from '../helpers/bdev.js';
import { run as runProcess, explain } from '../helpers/run.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { nbdshEnv, nbdshTool } from '../helpers/tools.js';

const MiB = 1 << 20;
const E_OPNOTSUPP = constants.errno.EOPNOTSUPP;

interface Seen {
  type: IoType;
  offset: number;
  length: number;
  flags: number;
}

class RecordingDriver implements BdevDriver {
  readonly module = 'recorder';
  readonly seen: Seen[] = [];
  readonly #mem: Buffer;

  constructor(
    size: number,
    readonly ioFlags: number,
  ) {
    this.#mem = Buffer.alloc(size);
  }

  supports(type: IoType): boolean {
    return type === IoType.Read || type === IoType.Write || type === IoType.Flush || type === IoType.Unmap || type === IoType.WriteZeroes;
  }

  submit(io: BdevIo): void {
    this.seen.push({ type: io.type, offset: io.offset, length: io.length, flags: io.flags });
    const buf = io.buf as Buffer;
    switch (io.type) {
      case IoType.Read:
        this.#mem.copy(buf, 0, io.offset, io.offset + io.length);
        break;
      case IoType.Write:
        buf.copy(this.#mem, io.offset, 0, io.length);
        break;
      case IoType.Unmap:
      case IoType.WriteZeroes:
        this.#mem.fill(0, io.offset, io.offset + io.length);
        break;
      default:
        break;
    }
    io.complete(0); // inside submit: the bdev layer defers it
  }

  /** What the I/O of `type` brought, since the last clear. */
  flagsOf(type: IoType): number[] {
    return this.seen.filter((s) => s.type === type).map((s) => s.flags);
  }

  info(): Record<string, unknown> {
    return {};
  }
  destruct(): Promise<void> {
    return Promise.resolve();
  }
}

function recorder(name: string, ioFlags = ALL_IO_FLAGS, size = 64 * MiB): { bdev: Bdev; rec: RecordingDriver } {
  const rec = new RecordingDriver(size, ioFlags);
  return { bdev: new Bdev({ name, blockSize: 512, numBlocks: size / 512, readonly: false, writeCache: true }, rec), rec };
}

/** One I/O through `submit`; resolves with its result. */
function once(submit: (io: BdevIo) => void, type: IoType, offset: number, length: number, flags: number): Promise<number> {
  return new Promise((resolve) => {
    const io = newIo((x) => resolve(x.result));
    io.type = type;
    io.offset = offset;
    io.length = length;
    io.flags = flags;
    io.buf = type === IoType.Write || type === IoType.Read ? bufferPool().get(length) : null;
    if (type === IoType.Write) pattern(length, 7).copy(io.buf as Buffer);
    submit(io);
  });
}

/** The flag words each test sends: WRITE with FUA, WRITE_ZEROES with NO_HOLE, FAST_ZERO, and all three. */
const SENT: [IoType, number][] = [
  [IoType.Write, IoFlag.Fua],
  [IoType.WriteZeroes, IoFlag.NoHole],
  [IoType.WriteZeroes, IoFlag.FastZero],
  [IoType.WriteZeroes, IoFlag.NoHole | IoFlag.FastZero | IoFlag.Fua],
];

interface Target {
  name: string;
  /** Builds the virtual bdev over recording bases (registered in reg); returns it and its bases' recorders. */
  build(reg: BdevRegistry): Promise<{ top: Bdev; recs: RecordingDriver[] }>;
}

const TARGETS: Target[] = [
  {
    name: 'passthru',
    build: (reg) => {
      const { bdev, rec } = recorder('r0');
      reg.add(bdev);
      return Promise.resolve({ top: reg.add(createPassthruBdev(bdev, { name: 'pt0' }), { claims: [bdev] }), recs: [rec] });
    },
  },
  {
    name: 'error',
    build: (reg) => {
      const { bdev, rec } = recorder('r0');
      reg.add(bdev);
      return Promise.resolve({ top: reg.add(createErrorBdev(bdev), { claims: [bdev] }), recs: [rec] });
    },
  },
  {
    name: 'delay (200 us: completions held, then settled)',
    build: (reg) => {
      const { bdev, rec } = recorder('r0');
      reg.add(bdev);
      const d = createDelayBdev(bdev, { name: 'd0', avgReadLatency: 200, p99ReadLatency: 200, avgWriteLatency: 200, p99WriteLatency: 200 });
      return Promise.resolve({ top: reg.add(d, { claims: [bdev] }), recs: [rec] });
    },
  },
  {
    name: 'split (part 1 of 2)',
    build: (reg) => {
      const { bdev, rec } = recorder('r0');
      reg.add(bdev);
      const parts = createSplitBdevs(bdev, { splitCount: 2 });
      for (const p of parts) reg.add(p, { claims: [bdev], claimGroup: bdev.name });
      return Promise.resolve({ top: parts[1] as Bdev, recs: [rec] });
    },
  },
  {
    name: 'raid0 over two bases (requests span both)',
    build: (reg) => {
      const a = recorder('ra'),
        b = recorder('rb');
      reg.add(a.bdev);
      reg.add(b.bdev);
      const r = createRaid0Bdev([a.bdev, b.bdev], { name: 'raid', stripSizeKb: 64 });
      return Promise.resolve({ top: reg.add(r, { claims: [a.bdev, b.bdev] }), recs: [a.rec, b.rec] });
    },
  },
  {
    name: 'lvol (thick, lvstore on the base)',
    build: async (reg) => {
      const { bdev, rec } = recorder('r0');
      reg.add(bdev);
      const stores = new Lvstores(reg, silentLogger());
      await stores.create('r0', 'lvs', 1 * MiB);
      const top = reg.get(await stores.createLvol('lvs', 'vol', 16, false));
      return { top, recs: [rec] };
    },
  },
  {
    name: 'QoS on the base itself (I/O held, then released by its timer)',
    build: (reg) => {
      const { bdev, rec } = recorder('r0');
      reg.add(bdev);
      bdev.setQosLimits({ rw_ios_per_sec: 1000 });
      return Promise.resolve({ top: bdev, recs: [rec] });
    },
  },
];

describe('command flags reach the base unchanged', () => {
  for (const t of TARGETS) {
    it(`through ${t.name}`, async () => {
      const reg = new BdevRegistry();
      try {
        const { top, recs } = await t.build(reg);
        expect(top.ioFlags).toBe(ALL_IO_FLAGS);
        for (const [type, flags] of SENT) {
          for (const r of recs) r.seen.length = 0;
          // 128 KiB from 64 KiB in: two raid strips, two lvol clusters' worth of pieces.
          const results = await Promise.all(
            [0, 1, 2].map((i) =>
              once(
                (io) => {
                  top.submit(io);
                },
                type,
                64 * 1024 + i * 128 * 1024,
                128 * 1024,
                flags,
              ),
            ),
          );
          expect(results).toEqual([0, 0, 0]);
          const got = recs.flatMap((r) => r.flagsOf(type));
          expect(got.length).toBeGreaterThanOrEqual(3);
          expect(new Set(got)).toEqual(new Set([flags]));
          expect(recs.every((r) => r.flagsOf(type).length > 0)).toBe(true); // raid0: both bases
        }
      } finally {
        await reg.closeAll();
      }
    });
  }

  it('through the unaligned adapter: aligned requests whole; an unaligned zero keeps its flags in the middle, FUA on the edges', async () => {
    const { bdev, rec } = recorder('r0');
    const ua = unalignedAdapter(bdev);
    try {
      for (const [type, flags] of SENT) {
        rec.seen.length = 0;
        expect(
          await once(
            (io) => {
              ua.submit(io);
            },
            type,
            4096,
            8192,
            flags,
          ),
        ).toBe(0);
        expect(rec.seen).toEqual([{ type, offset: 4096, length: 8192, flags }]);
      }
      rec.seen.length = 0;
      expect(
        await once(
          (io) => {
            ua.submit(io);
          },
          IoType.WriteZeroes,
          1000,
          3000,
          IoFlag.NoHole | IoFlag.Fua,
        ),
      ).toBe(0);
      expect(rec.flagsOf(IoType.WriteZeroes)).toEqual([IoFlag.NoHole | IoFlag.Fua]);
      expect(new Set(rec.flagsOf(IoType.Write))).toEqual(new Set([IoFlag.Fua]));
      // Its edges could only be written: a fast zero is refused before the base sees anything.
      rec.seen.length = 0;
      expect(
        await once(
          (io) => {
            ua.submit(io);
          },
          IoType.WriteZeroes,
          1000,
          3000,
          IoFlag.FastZero,
        ),
      ).toBe(-E_OPNOTSUPP);
      expect(rec.seen).toEqual([]);
    } finally {
      await bdev.close();
    }
  });

  it('a thin lvol refuses a fast zero that would allocate, before any piece reaches the base', async () => {
    const reg = new BdevRegistry();
    try {
      const { rec } = (() => {
        const r = recorder('r0');
        reg.add(r.bdev);
        return r;
      })();
      const stores = new Lvstores(reg, silentLogger());
      await stores.create('r0', 'lvs', 1 * MiB);
      const vol = reg.get(await stores.createLvol('lvs', 'thin', 8, true));
      rec.seen.length = 0;
      // NO_HOLE on a cluster nobody wrote needs one allocated: not fast.
      expect((await run(vol, IoType.WriteZeroes, 0, 2 * MiB, { flags: IoFlag.NoHole | IoFlag.FastZero })).result).toBe(-E_OPNOTSUPP);
      expect(rec.seen).toEqual([]);
      // Without NO_HOLE it is already zero: nothing to do, fast.
      expect((await run(vol, IoType.WriteZeroes, 0, 2 * MiB, { flags: IoFlag.FastZero })).result).toBe(0);
      expect(rec.seen).toEqual([]);
      // NO_HOLE without FAST_ZERO allocates, then zeroes through with the flag.
      expect((await run(vol, IoType.WriteZeroes, 0, 1 * MiB, { flags: IoFlag.NoHole })).result).toBe(0);
      expect(rec.flagsOf(IoType.WriteZeroes)).toContain(IoFlag.NoHole);
    } finally {
      await reg.closeAll();
    }
  });
});

describe('a virtual bdev declares what its base declares', () => {
  it('without fast zero below: not declared, not advertised, and refused as a caller bug', async () => {
    const reg = new BdevRegistry();
    try {
      const a = recorder('ra', IoFlag.Fua | IoFlag.NoHole),
        b = recorder('rb');
      reg.add(a.bdev);
      reg.add(b.bdev);
      const ee = reg.add(createErrorBdev(a.bdev), { claims: [a.bdev] });
      const raid = reg.add(createRaid0Bdev([a.bdev, b.bdev], { name: 'raid', stripSizeKb: 64 }));
      const pt = createPassthruBdev(a.bdev, { name: 'pt0' });
      for (const top of [ee, raid, pt]) {
        expect(top.ioFlags).toBe(IoFlag.Fua | IoFlag.NoHole);
        const f = new Export(top).flags;
        expect(f & NBD_FLAG_SEND_WRITE_ZEROES).not.toBe(0);
        expect(f & NBD_FLAG_SEND_FUA).not.toBe(0);
        expect(f & NBD_FLAG_SEND_FAST_ZERO).toBe(0);
        const io = newIo(() => undefined);
        io.type = IoType.WriteZeroes;
        io.offset = 0;
        io.length = 4096;
        io.flags = IoFlag.FastZero;
        expect(() => {
          top.submit(io);
        }).toThrow(BdevIoMisuseError);
        expect(top.outstanding).toBe(0);
        expect(io.pending).toBe(false);
      }
      expect(new Export(b.bdev).flags & NBD_FLAG_SEND_FAST_ZERO).not.toBe(0);
      await pt.close();
    } finally {
      await reg.closeAll();
    }
  });

  it('NO_HOLE and FAST_ZERO on anything but WRITE_ZEROES are refused as a caller bug', async () => {
    const { bdev } = recorder('r0');
    const io = newIo(() => undefined);
    io.type = IoType.Write;
    io.offset = 0;
    io.length = 512;
    io.buf = bufferPool().get(512);
    io.flags = IoFlag.NoHole;
    expect(() => {
      bdev.submit(io);
    }).toThrow(/WRITE_ZEROES/);
    await bdev.close();
  });
});

describe('completion is a call on the I/O', () => {
  it('a second io.complete() throws BdevIoMisuseError; one never submitted cannot complete', async () => {
    let twice: unknown = null;
    const driver: BdevDriver = {
      module: 'twice',
      ioFlags: 0,
      supports: (type) => type === IoType.Flush,
      submit(io) {
        io.complete(0);
        try {
          io.complete(0);
        } catch (err) {
          twice = err;
        }
      },
      info: () => ({}),
      destruct: () => Promise.resolve(),
    };
    const b = new Bdev({ name: 't', blockSize: 512, numBlocks: 8, readonly: false, writeCache: false }, driver);
    expect((await run(b, IoType.Flush, 0, 0)).calls).toBe(1);
    expect(twice).toBeInstanceOf(BdevIoMisuseError);
    expect(() => {
      newIo(() => undefined).complete(0);
    }).toThrow(BdevIoMisuseError);
    await b.close();
  });
});

describe.skipIf(!nbdshTool())('over NBD (nbdsh): FAST_ZERO advertised exactly where the bdev declares it', () => {
  let dir: string;
  let server: NbdServer;
  let reg: BdevRegistry;
  let fastRec: RecordingDriver;
  let slowRec: RecordingDriver;
  let ptRec: RecordingDriver;
  const uri = (name: string): string => `nbd+unix:///${name}?socket=${path.join(dir, 'nbd.sock')}`;

  beforeAll(async () => {
    dir = tmpDir('aionbd-flags-');
    reg = new BdevRegistry();
    server = new NbdServer({ log: silentLogger() });
    const m = reg.add(createMallocBdev({ name: 'm0', blockSize: 512, numBlocks: (16 * MiB) / 512 }));
    const fast = recorder('fast', ALL_IO_FLAGS, 16 * MiB),
      slow = recorder('slow', IoFlag.Fua | IoFlag.NoHole, 16 * MiB);
    const ptBase = recorder('ptbase', ALL_IO_FLAGS, 16 * MiB);
    fastRec = fast.rec;
    slowRec = slow.rec;
    ptRec = ptBase.rec;
    reg.add(fast.bdev);
    reg.add(slow.bdev);
    reg.add(ptBase.bdev);
    server.addExport(reg.add(createErrorBdev(m), { claims: [m] }), { name: 'ee-malloc' });
    server.addExport(reg.add(createErrorBdev(fast.bdev), { claims: [fast.bdev] }), { name: 'ee-fast' });
    server.addExport(reg.add(createErrorBdev(slow.bdev), { claims: [slow.bdev] }), { name: 'ee-slow' });
    server.addExport(reg.add(createPassthruBdev(ptBase.bdev, { name: 'pt0' }), { claims: [ptBase.bdev] }), { name: 'pt-fast' });
    await server.listen({ kind: 'unix', path: path.join(dir, 'nbd.sock') });
  });

  afterAll(async () => {
    await server.close({ graceMs: 1000 });
    await reg.closeAll();
    rmrf(dir);
  });

  it('error over malloc advertises and honours it; error and passthru over a recorder pass it down; over a base without it, not advertised and EINVAL', async () => {
    const script = String.raw`
import nbd, errno, os
M = 1024 * 1024
def open_(name):
    h = nbd.NBD()
    h.connect_uri(os.environ['URI_' + name])
    return h

h = open_('MALLOC')
assert h.can_zero() and h.can_fast_zero()
h.pwrite(b'\xa5' * M, 2 * M)
h.zero(M, 2 * M, nbd.CMD_FLAG_FAST_ZERO)
assert h.pread(M, 2 * M) == bytes(M)
h.shutdown()

for name in ('FAST', 'PT'):
    h = open_(name)
    assert h.can_fast_zero()
    h.zero(M, 4 * M, nbd.CMD_FLAG_FAST_ZERO)
    h.zero(M, 5 * M, nbd.CMD_FLAG_NO_HOLE)
    h.pwrite(b'x' * 4096, 6 * M, nbd.CMD_FLAG_FUA)
    h.shutdown()

h = open_('SLOW')
assert h.can_zero() and h.can_fua() and not h.can_fast_zero()
h.zero(M, 4 * M, nbd.CMD_FLAG_NO_HOLE)
h.set_strict_mode(0)  # send it anyway: the server must refuse it
try:
    h.zero(M, 5 * M, nbd.CMD_FLAG_FAST_ZERO)
    raise SystemExit('FAST_ZERO accepted where it was not advertised')
except nbd.Error as e:
    assert e.errnum == errno.EINVAL, e
h.shutdown()
print('ok')
`;
    const env = {
      ...(nbdshEnv() ?? process.env),
      URI_MALLOC: uri('ee-malloc'),
      URI_FAST: uri('ee-fast'),
      URI_SLOW: uri('ee-slow'),
      URI_PT: uri('pt-fast'),
    };
    const r = await runProcess('nbdsh', ['-c', script], { timeoutMs: 60_000, env });
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout.trim()).toBe('ok');
    const at = (rec: RecordingDriver, type: IoType, offset: number): number[] =>
      rec.seen.filter((s) => s.type === type && s.offset === offset).map((s) => s.flags);
    for (const rec of [fastRec, ptRec]) {
      expect(at(rec, IoType.WriteZeroes, 4 * MiB)).toEqual([IoFlag.FastZero]);
      expect(at(rec, IoType.WriteZeroes, 5 * MiB)).toEqual([IoFlag.NoHole]);
      expect(at(rec, IoType.Write, 6 * MiB)).toEqual([IoFlag.Fua]);
    }
    expect(at(slowRec, IoType.WriteZeroes, 4 * MiB)).toEqual([IoFlag.NoHole]);
    expect(at(slowRec, IoType.WriteZeroes, 5 * MiB)).toEqual([]);
  }, 90_000);
});
