// The conformance suite against every module, and against stacks of them (virtual bdevs over
// virtual bdevs).
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createAioBdev } from '../../src/modules/aio/aio.js';
import { createUringBdev } from '../../src/modules/uring/uring.js';
import type { Bdev } from '../../src/bdev/bdev.js';
import { createDelayBdev } from '../../src/modules/delay/delay.js';
import { createErrorBdev } from '../../src/modules/error/error.js';
import { createMallocBdev } from '../../src/modules/malloc/malloc.js';
import { createNullBdev } from '../../src/modules/null/null.js';
import { createPassthruBdev } from '../../src/modules/passthru/passthru.js';
import { createRaid0Bdev } from '../../src/modules/raid/raid0.js';
import type { BdevRegistry } from '../../src/bdev/registry.js';
import { createSplitBdevs } from '../../src/modules/split/split.js';
import { Lvstores } from '../../src/modules/lvol/lvstores.js';
import { bdevs } from '../../src/modules/index.js';
import { createRbdBdev } from '../../src/modules/rbd/bdev.js';
import { RbdConnection } from '../../src/modules/rbd/cluster.js';
import { haveCeph, imageName, sharedCeph } from '../helpers/ceph.js';
import { bufferPool } from '../../src/bdev/buffers.js';
import { IoType, newIo } from '../../src/bdev/types.js';
import { silentLogger } from '../../src/log.js';
import { bdevConformance as runConformance, type Target } from './conformance.js';

const log = silentLogger();
/** The modules the targets below cover, by the name their entry in `bdevs` has. */
const covered = new Set<string>();

function aio(reg: BdevRegistry, dir: string, name: string, bs: number, size: number): Bdev {
  return reg.add(createAioBdev({ filename: path.join(dir, `${name}.img`), name, size, blockSize: bs, log }));
}

function bdevConformance(t: Target): void {
  for (const m of t.module.split(/[^a-z0-9]+/)) covered.add(m);
  runConformance(t);
}

const aioSupports = { unmap: true, writeZeroes: true, reset: false, flush: true };
const mallocSupports = { unmap: true, writeZeroes: true, reset: true, flush: true };

bdevConformance({ module: 'aio', create: (reg, dir, bs, n) => aio(reg, dir, 'a0', bs, bs * n), supports: aioSupports });

// The AIO bdev's driver over io_uring: O_DIRECT files under /var/tmp (tmpDir), not tmpfs.
bdevConformance({
  module: 'uring',
  create: (reg, dir, bs, n) =>
    reg.add(createUringBdev({ filename: path.join(dir, 'u0.img'), name: 'u0', size: bs * n, blockSize: bs, log })),
  supports: aioSupports,
});

bdevConformance({
  module: 'malloc',
  create: (reg, _dir, bs, n) => reg.add(createMallocBdev({ name: 'm0', blockSize: bs, numBlocks: n })),
  supports: mallocSupports,
});

bdevConformance({
  module: 'null',
  create: (reg, _dir, bs, n) => reg.add(createNullBdev({ name: 'n0', blockSize: bs, numBlocks: n })),
  supports: mallocSupports,
  discardsWrites: true,
});

bdevConformance({
  module: 'passthru over malloc',
  create: (reg, _dir, bs, n) => {
    const base = reg.add(createMallocBdev({ name: 'm0', blockSize: bs, numBlocks: n }));
    return reg.add(createPassthruBdev(base, { name: 'pt0' }), { claims: [base] });
  },
  supports: mallocSupports,
});

bdevConformance({
  module: 'passthru over aio',
  create: (reg, dir, bs, n) => {
    const base = aio(reg, dir, 'a0', bs, bs * n);
    return reg.add(createPassthruBdev(base, { name: 'pt0' }), { claims: [base] });
  },
  supports: aioSupports,
});

bdevConformance({
  module: 'error over aio',
  create: (reg, dir, bs, n) => {
    const base = aio(reg, dir, 'a0', bs, bs * n);
    return reg.add(createErrorBdev(base), { claims: [base] });
  },
  supports: aioSupports,
});

bdevConformance({
  module: 'raid (level 0, 64 KiB strips) over two aio',
  create: (reg, dir, bs, n) => {
    const a = aio(reg, dir, 'a1', bs, (bs * n) / 2),
      b = aio(reg, dir, 'a2', bs, (bs * n) / 2);
    return reg.add(createRaid0Bdev([a, b], { name: 'r0', stripSizeKb: 64 }), { claims: [a, b] });
  },
  supports: aioSupports,
});

bdevConformance({
  module: 'raid0 (4 KiB strips) over three malloc',
  blockSizes: [512, 4096],
  create: (reg, _dir, bs, n) => {
    // 8 MiB is not a multiple of three strips: each base is a little larger and the rest unused.
    const bases = [0, 1, 2].map((i) => reg.add(createMallocBdev({ name: `m${i}`, blockSize: bs, numBlocks: Math.ceil(n / 3) + 8 })));
    const r = createRaid0Bdev(bases, { name: 'r0', stripSizeKb: 4 });
    r.resize(n); // the suite wants exactly n blocks; the raid holds more
    return reg.add(r, { claims: bases });
  },
  supports: mallocSupports,
});

bdevConformance({
  module: 'split (part 1 of 2) over malloc',
  create: (reg, _dir, bs, n) => {
    const base = reg.add(createMallocBdev({ name: 'm0', blockSize: bs, numBlocks: 2 * n }));
    const parts = createSplitBdevs(base, { splitCount: 2 });
    for (const p of parts) reg.add(p, { claims: [base], claimGroup: base.name });
    return parts[1] as Bdev;
  },
  supports: mallocSupports,
});

bdevConformance({
  module: 'delay over malloc',
  blockSizes: [4096],
  create: (reg, _dir, bs, n) => {
    const base = reg.add(createMallocBdev({ name: 'm0', blockSize: bs, numBlocks: n }));
    return reg.add(
      createDelayBdev(base, { name: 'd0', avgReadLatency: 200, p99ReadLatency: 2000, avgWriteLatency: 300, p99WriteLatency: 3000 }),
      { claims: [base] },
    );
  },
  supports: mallocSupports,
});

async function lvolOver(reg: BdevRegistry, base: Bdev, bs: number, n: number, thin: boolean): Promise<Bdev> {
  const stores = new Lvstores(reg, log);
  await stores.create(base.name, 'lvs', 1 << 20);
  const uuid = await stores.createLvol('lvs', 'vol', (bs * n) / 2 ** 20, thin);
  return reg.get(uuid);
}

bdevConformance({
  module: 'lvol (thin, 1 MiB clusters) over malloc',
  create: async (reg, _dir, bs, n) =>
    lvolOver(reg, reg.add(createMallocBdev({ name: 'm0', blockSize: bs, numBlocks: n + (2 << 20) / bs })), bs, n, true),
  supports: { unmap: true, writeZeroes: true, reset: false, flush: true },
});

bdevConformance({
  module: 'lvol (thick) over aio',
  blockSizes: [4096],
  create: async (reg, dir, bs, n) => lvolOver(reg, aio(reg, dir, 'a0', bs, bs * n + (2 << 20)), bs, n, false),
  supports: { unmap: true, writeZeroes: true, reset: false, flush: true },
});

// One 8 MiB image of the run's test cluster, opened afresh for every test over one connection.
const withRbd = haveCeph();
let rbdImage: Promise<{ conn: RbdConnection; pool: string; image: string }> | null = null;
function rbdTarget(): Promise<{ conn: RbdConnection; pool: string; image: string }> {
  rbdImage ??= (async () => {
    const ceph = await sharedCeph();
    const image = imageName('conformance');
    await ceph.createImage(image, '8M');
    return { conn: await RbdConnection.open({ configFile: ceph.conf }), pool: ceph.pool, image };
  })();
  return rbdImage;
}
afterAll(async () => {
  if (rbdImage !== null) await (await rbdImage).conn.close();
});

if (withRbd) {
  bdevConformance({
    module: 'rbd',
    create: async (reg, _dir, bs) => {
      const r = await rbdTarget();
      return reg.add(
        await createRbdBdev({
          name: 'rbd0',
          pool: r.pool,
          image: r.image,
          blockSize: bs,
          conn: r.conn,
          release: () => Promise.resolve(),
          log,
        }),
      );
    },
    // UNMAP is a hint here: librbd skips the parts of a discard that do not cover whole objects.
    supports: { unmap: false, writeZeroes: true, reset: false, flush: true },
  });
}
bdevConformance({
  module: 'lvol (clone of a snapshot holding data) over malloc',
  blockSizes: [4096],
  create: async (reg, _dir, bs, n) => {
    const stores = new Lvstores(reg, log);
    await stores.create(reg.add(createMallocBdev({ name: 'm0', blockSize: bs, numBlocks: 2 * n + (2 << 20) / bs })).name, 'lvs', 1 << 20);
    const v = reg.get(await stores.createLvol('lvs', 'vol', (bs * n) / 2 ** 20, true));
    // Data in every cluster of the snapshot, so each read and write of the clone goes through it.
    const io = newIo(() => undefined);
    await new Promise<void>((resolve) => {
      io.type = IoType.Write;
      io.offset = 0;
      io.length = v.sizeBytes;
      io.buf = bufferPool().get(v.sizeBytes).fill(0x5c, 0, v.sizeBytes);
      io.done = () => {
        bufferPool().put(io.buf as Buffer);
        resolve();
      };
      v.submit(io);
    });
    await stores.snapshot('lvs/vol', 'snap');
    return reg.get(await stores.clone('lvs/snap', 'clone'));
  },
  supports: { unmap: true, writeZeroes: true, reset: false, flush: true },
});

describe('the conformance targets', () => {
  it('cover every module in the bdevs table, and lvol', () => {
    for (const m of [...Object.keys(bdevs), 'lvol'].filter((x) => x !== 'rbd' || withRbd)) expect(covered, m).toContain(m);
  });
});
