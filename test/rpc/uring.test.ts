// SPDK's bdev_uring over the real socket, with rpc.py's forms: create (and its refusals),
// rescan after the file grew, delete, and save_config brought back by a restart with --config,
// the file served through io_uring all along.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { explain } from '../helpers/run.js';
import { makeFile, targetPerTest } from './target.js';

const MiB = 2 ** 20;

describe('bdev_uring_* with aionbd rpc', () => {
  const target = targetPerTest();

  it('bdev_uring_create FILENAME NAME [BLOCK_SIZE], its refusals, bdev_uring_rescan, bdev_uring_delete', async () => {
    const t = await target();
    const img = makeFile(t.file('u.img'), 4 * MiB);
    expect(await t.ok('bdev_uring_create', img, 'u0', '4096')).toBe('u0');
    const [b] = (await t.json('bdev_get_bdevs', '-b', 'u0')) as Record<string, unknown>[];
    expect(b).toMatchObject({
      name: 'u0',
      product_name: 'URING bdev',
      block_size: 4096,
      num_blocks: 1024,
      claimed: false,
      supported_io_types: { read: true, write: true, flush: true, unmap: true, write_zeroes: true },
      driver_specific: { uring: { filename: fs.realpathSync(img), block_size_override: true, readonly: false, o_direct: true } },
    });
    // Without a block size: 512 for a file, as bdev_aio_create.
    expect(await t.ok('bdev_uring_create', img, 'u1')).toBe('u1');
    expect(await t.json('bdev_get_bdevs', '-b', 'u1')).toMatchObject([{ block_size: 512, num_blocks: 8192 }]);

    const missing = await t.rpc('bdev_uring_create', t.file('nope.img'), 'u2');
    expect(missing.code, explain(missing)).toBe(1);
    expect(missing.stderr).toMatch(/^aionbd: No such file or directory: .*nope\.img/);
    const badBs = await t.rpc('bdev_uring_create', img, 'u2', '1000');
    expect(badBs.code, explain(badBs)).toBe(1);
    expect(badBs.stderr).toBe('aionbd: Invalid argument: block size 1000 must be a power of two of at least 512 and at most 65536\n');
    const dup = await t.rpc('bdev_uring_create', img, 'u0');
    expect(dup.code, explain(dup)).toBe(1);
    expect(dup.stderr).toBe('aionbd: File exists: bdev "u0" already exists\n');
    const usage = await t.rpc('bdev_uring_create', img);
    expect(usage.code).toBe(2);

    // A grown file grows the bdev.
    fs.truncateSync(img, 8 * MiB);
    expect(await t.ok('bdev_uring_rescan', 'u0')).toBe('true');
    expect(await t.json('bdev_get_bdevs', '-b', 'u0')).toMatchObject([{ num_blocks: 2048 }]);
    // Another module's bdev is not one to rescan or delete as uring.
    await t.ok('bdev_aio_create', img, 'a0');
    const wrong = await t.rpc('bdev_uring_rescan', 'a0');
    expect(wrong.code, explain(wrong)).toBe(1);
    expect(wrong.stderr).toBe('aionbd: No such device: bdev "a0" is a aio bdev, not a uring bdev\n');
    expect((await t.rpc('bdev_uring_delete', 'a0')).code).toBe(1);

    for (const n of ['u0', 'u1']) expect(await t.ok('bdev_uring_delete', n)).toBe('true');
    expect(((await t.json('bdev_get_bdevs')) as { name: string }[]).map((x) => x.name)).toEqual(['a0']);
    const help = await t.rpc('bdev_uring_create', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: aionbd rpc \[-s SOCK\] \[-t SEC\] bdev_uring_create FILE NAME \[BLOCK_SIZE\]/);
  }, 30_000);

  it('save_config, then a restart with --config, gives the same uring bdevs and exports; --uring serves one from the start', async () => {
    const img = (dir: string): string => makeFile(`${dir}/b.img`, 2 * MiB);
    const t = await target({ prepare: (d) => img(d), args: ['--uring', 'b.img,name=boot,bs=4096'] });
    await t.ok('bdev_uring_create', makeFile(t.file('u.img'), 8 * MiB), 'u0', '512', '-u', '5e0dd5f3-8c38-4b1e-9e51-05cbd2bc1a1c');
    await t.ok('nbd_export_add', 'u0', '-n', 'data');
    expect(await t.json('bdev_get_bdevs', '-b', 'boot')).toMatchObject([{ product_name: 'URING bdev', block_size: 4096, num_blocks: 512 }]);
    const bdevs = await t.json('bdev_get_bdevs');
    const exports = await t.json('nbd_get_exports');
    const cfg = await t.ok('save_config');
    const entries =
      (JSON.parse(cfg) as { subsystems: { config: { method: string; params?: Record<string, unknown> }[] }[] }).subsystems[0]?.config ?? [];
    expect(entries.filter((e) => e.method === 'bdev_uring_create').map((e) => e.params)).toEqual([
      // As --aio: the name given on the command line, relative to the server's directory.
      { name: 'boot', filename: 'b.img', block_size: 4096, readonly: false, uuid: expect.any(String) as string },
      {
        name: 'u0',
        filename: fs.realpathSync(t.file('u.img')),
        block_size: 512,
        readonly: false,
        uuid: '5e0dd5f3-8c38-4b1e-9e51-05cbd2bc1a1c',
      },
    ]);
    fs.writeFileSync(t.file('saved.json'), cfg);
    expect(await t.stop()).toBe(0);

    const t2 = await target({ dir: t.dir, args: ['--config', t.file('saved.json')] });
    expect(await t2.json('bdev_get_bdevs')).toEqual(bdevs);
    expect(await t2.json('nbd_get_exports')).toEqual(exports);
    expect(await t2.ok('save_config')).toBe(cfg);
  }, 60_000);
});
