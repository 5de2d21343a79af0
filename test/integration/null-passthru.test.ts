// Real NBD clients (nbdinfo, nbdcopy, qemu-io) against SPDK's null bdev, which reads zeroes
// whatever was written, and its passthru bdev over an AIO file, which must hand every byte to
// the file below it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain, run, type RunResult } from '../helpers/run.js';
import { tool } from '../helpers/tools.js';
import { makeFile, startTarget, type RpcTarget } from '../rpc/target.js';

const MiB = 2 ** 20;
const has = { libnbd: tool('nbdinfo', 'nbdcopy'), qemuIo: tool('qemu-io') };

function expectOk(r: RunResult): void {
  expect(r.code, explain(r)).toBe(0);
}

describe.skipIf(!has.libnbd)('NBD clients on null and passthru bdevs', () => {
  let t: RpcTarget;
  beforeAll(async () => {
    t = await startTarget();
    await t.ok('bdev_null_create', 'n0', '64', '512');
    await t.ok('nbd_export_add', 'n0');
    await t.ok('bdev_aio_create', makeFile(t.file('a0.img'), 32 * MiB), 'a0', '4096');
    await t.ok('bdev_passthru_create', '-b', 'a0', '-p', 'pt0');
    await t.ok('nbd_export_add', 'pt0', '-n', 'data');
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('null: nbdinfo sees its size and one zero hole; what nbdcopy writes reads back as zeroes', async () => {
    const size = await run('nbdinfo', ['--size', t.uri('n0')], { timeoutMs: 20_000 });
    expectOk(size);
    expect(size.stdout.trim()).toBe(String(64 * MiB));
    const map = await run('nbdinfo', ['--map', t.uri('n0')], { timeoutMs: 20_000 });
    expectOk(map);
    expect(
      map.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/)),
    ).toEqual([['0', String(64 * MiB), '3', 'hole,zero']]);
    const src = t.file('random-16m.bin');
    fs.writeFileSync(src, crypto.randomBytes(16 * MiB));
    expectOk(await run('nbdcopy', ['--flush', src, t.uri('n0')], { timeoutMs: 60_000 }));
    const back = t.file('n0-back.bin');
    expectOk(await run('nbdcopy', [t.uri('n0'), back], { timeoutMs: 60_000 }));
    const got = fs.readFileSync(back);
    expect(got.length).toBe(64 * MiB);
    expect(got.equals(Buffer.alloc(64 * MiB))).toBe(true);
    const st = (await t.json('bdev_get_iostat', '-b', 'n0')) as { bdevs: { bytes_written: number }[] };
    expect(st.bdevs[0]?.bytes_written).toBe(16 * MiB);
  }, 90_000);

  it.skipIf(!has.qemuIo)(
    'null: qemu-io writes a pattern, FUA and zeroes it, and reads zeroes',
    async () => {
      const r = await run(
        'qemu-io',
        [
          '-f',
          'raw',
          '-c',
          'write -P 0xab 0 1M',
          '-c',
          'write -f -P 0xcd 1M 1M',
          '-c',
          'write -z 2M 1M',
          '-c',
          'read -P 0 0 3M',
          '-c',
          'flush',
          t.uri('n0'),
        ],
        { timeoutMs: 60_000 },
      );
      expectOk(r);
      expect(r.stdout.match(/^wrote 1048576\/1048576 bytes/gm)).toHaveLength(3);
      expect(r.stdout).toMatch(/^read 3145728\/3145728 bytes at offset 0$/m);
      expect(r.stderr).toBe('');
    },
    60_000,
  );

  it('passthru over aio: nbdcopy in and out, byte for byte, and the bytes are in the file below', async () => {
    const src = t.file('random-32m.bin');
    const data = crypto.randomBytes(32 * MiB);
    fs.writeFileSync(src, data);
    expectOk(await run('nbdcopy', ['--flush', src, t.uri('data')], { timeoutMs: 60_000 }));
    const back = t.file('pt0-back.bin');
    expectOk(await run('nbdcopy', [t.uri('data'), back], { timeoutMs: 60_000 }));
    expect(fs.readFileSync(back).equals(data)).toBe(true);
    // O_DIRECT writes of the AIO bdev below, flushed: the image file holds them.
    expect(fs.readFileSync(t.file('a0.img')).equals(data)).toBe(true);
    const st = (await t.json('bdev_get_iostat', '--names', 'pt0,a0')) as {
      bdevs: { name: string; bytes_written: number; bytes_read: number }[];
    };
    for (const b of st.bdevs) {
      expect(b.bytes_written, b.name).toBe(32 * MiB);
      expect(b.bytes_read, b.name).toBeGreaterThanOrEqual(32 * MiB);
    }
  }, 90_000);
});
