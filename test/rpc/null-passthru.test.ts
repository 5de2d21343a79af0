// SPDK's null and passthru bdevs over the real socket, with rpc.py's forms: each module is one
// directory and one line of src/modules/list.ts, and from that alone the server serves its
// methods, `aionbd rpc` knows its forms, and save_config brings its bdevs back.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { explain } from '../helpers/run.js';
import { makeFile, targetPerTest } from './target.js';

const MiB = 2 ** 20;
const UUID = '5e0dd5f3-8c38-4b1e-9e51-05cbd2bc1a1c';

describe('bdev_null_* and bdev_passthru_* with aionbd rpc', () => {
  const target = targetPerTest();

  it('bdev_null_create NAME SIZE_MB BLOCK_SIZE, bdev_null_resize NAME MIB, bdev_null_delete NAME', async () => {
    const t = await target();
    expect(await t.ok('bdev_null_create', 'n0', '64', '4096', '-u', UUID)).toBe('n0');
    const [b] = (await t.json('bdev_get_bdevs', '-b', 'n0')) as Record<string, unknown>[];
    expect(b).toMatchObject({
      name: 'n0',
      product_name: 'Null disk',
      block_size: 4096,
      num_blocks: 16384,
      uuid: UUID,
      claimed: false,
      supported_io_types: { read: true, write: true, flush: true, unmap: true, write_zeroes: true, reset: true, seek_data: false },
      driver_specific: {},
    });
    // A unit says what it means; the JSON form takes SPDK's own save_config params, metadata off.
    expect(await t.ok('bdev_null_create', 'n1', '1G', '512')).toBe('n1');
    expect(await t.json('bdev_get_bdevs', '-b', 'n1')).toMatchObject([{ block_size: 512, num_blocks: 2 * 1024 * 1024 }]);
    expect(
      await t.ok(
        'bdev_null_create',
        JSON.stringify({
          name: 'n2',
          num_blocks: 100,
          block_size: 512,
          physical_block_size: 4096,
          md_size: 0,
          dif_type: 0,
          dif_is_head_of_md: false,
          dif_pi_format: 0,
        }),
      ),
    ).toBe('n2');
    const md = await t.rpc('bdev_null_create', JSON.stringify({ name: 'n3', num_blocks: 100, block_size: 512, md_size: 8 }));
    expect(md.code, explain(md)).toBe(1);
    expect(md.stderr).toMatch(/md_size must be <= 0/);
    const bad = await t.rpc('bdev_null_create', 'n3', '1', '1000');
    expect(bad.code, explain(bad)).toBe(1);
    expect(bad.stderr).toBe('aionbd: Invalid argument: block size 1000 must be a multiple of 512\n');
    const usage = await t.rpc('bdev_null_create', 'n3', '1');
    expect(usage.code).toBe(2);

    // Grows, and shrinks (nothing claims it, no client was told its size).
    expect(await t.ok('bdev_null_resize', 'n0', '128')).toBe('true');
    expect(await t.json('bdev_get_bdevs', '-b', 'n0')).toMatchObject([{ num_blocks: 32768 }]);
    expect(await t.ok('bdev_null_resize', 'n0', '32')).toBe('true');
    expect(await t.json('bdev_get_bdevs', '-b', 'n0')).toMatchObject([{ num_blocks: 8192 }]);
    await t.ok('bdev_malloc_create', '4', '512', '-b', 'm0');
    const wrong = await t.rpc('bdev_null_resize', 'm0', '8');
    expect(wrong.code, explain(wrong)).toBe(1);
    expect(wrong.stderr).toBe('aionbd: No such device: bdev "m0" is a malloc bdev, not a null bdev\n');
    const notNull = await t.rpc('bdev_null_delete', 'm0');
    expect(notNull.code, explain(notNull)).toBe(1);

    for (const n of ['n0', 'n1', 'n2']) expect(await t.ok('bdev_null_delete', n)).toBe('true');
    expect(((await t.json('bdev_get_bdevs')) as { name: string }[]).map((x) => x.name)).toEqual(['m0']);
    const help = await t.rpc('bdev_null_create', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: aionbd rpc \[-s SOCK\] \[-t SEC\] bdev_null_create NAME SIZE_MB BLOCK_SIZE \[-u UUID\]/);
  });

  it('bdev_passthru_create -b BASE -p NAME claims its base and reports as SPDK does', async () => {
    const t = await target();
    const img = makeFile(t.file('a0.img'), 8 * MiB);
    await t.ok('bdev_aio_create', img, 'a0', '4096');
    expect(await t.ok('bdev_passthru_create', '-b', 'a0', '-p', 'pt0')).toBe('pt0');
    const [base] = (await t.json('bdev_get_bdevs', '-b', 'a0')) as Record<string, unknown>[];
    const [pt] = (await t.json('bdev_get_bdevs', '-b', 'pt0')) as Record<string, unknown>[];
    expect(base).toMatchObject({ claimed: true, claim_type: 'exclusive_write' });
    expect(pt).toMatchObject({
      name: 'pt0',
      product_name: 'passthru',
      block_size: 4096,
      num_blocks: 2048,
      claimed: false,
      driver_specific: { passthru: { name: 'pt0', base_bdev_name: 'a0' } },
    });
    // Its capabilities are its base's.
    expect(pt?.['supported_io_types']).toEqual(base?.['supported_io_types']);
    const twice = await t.rpc('bdev_passthru_create', '-b', 'a0', '-p', 'pt1');
    expect(twice.code, explain(twice)).toBe(1);
    const busy = await t.rpc('bdev_aio_delete', 'a0');
    expect(busy.code, explain(busy)).toBe(1);
    const missing = await t.rpc('bdev_passthru_create', '-b', 'nothing', '-p', 'pt2');
    expect(missing.stderr).toBe('aionbd: No such device: bdev "nothing" does not exist\n');
    const noName = await t.rpc('bdev_passthru_create', '-b', 'a0');
    expect(noName.code).toBe(2);
    expect(noName.stderr).toMatch(/missing name: give -p NAME/);

    // It follows its base's size; its base cannot shrink under it.
    await t.ok('bdev_null_create', 'n0', '16', '512');
    await t.ok('bdev_passthru_create', '{"base_bdev_name": "n0", "name": "ptn"}');
    await t.ok('bdev_null_resize', 'n0', '32');
    expect(await t.json('bdev_get_bdevs', '-b', 'ptn')).toMatchObject([{ num_blocks: 65536, product_name: 'passthru' }]);
    const shrink = await t.rpc('bdev_null_resize', 'n0', '8');
    expect(shrink.code, explain(shrink)).toBe(1);
    expect(shrink.stderr).toMatch(/cannot shrink while the passthru module claims it/);

    expect(await t.ok('bdev_passthru_delete', 'pt0')).toBe('true');
    expect(await t.json('bdev_get_bdevs', '-b', 'a0')).toMatchObject([{ claimed: false }]);
    expect(await t.ok('bdev_aio_delete', 'a0')).toBe('true');
    const gone = await t.rpc('bdev_passthru_delete', 'n0');
    expect(gone.code, explain(gone)).toBe(1);
  });

  it('save_config, then a restart with --config, gives the same bdevs, claims and exports', async () => {
    const t = await target();
    await t.ok('bdev_null_create', 'n0', '64', '4096', '-u', UUID);
    await t.ok('bdev_aio_create', makeFile(t.file('a0.img'), 8 * MiB), 'a0', '512');
    await t.ok('bdev_passthru_create', '-b', 'a0', '-p', 'pta');
    await t.ok('bdev_passthru_create', '-b', 'n0', '-p', 'ptn', '-u', '0f3c2a8e-1b7d-4e62-9c55-7d1f0b2e4a90');
    await t.ok('nbd_export_add', 'pta', '-n', 'data');
    await t.ok('nbd_export_add', 'ptn', '-n', 'zeroes');
    const bdevs = await t.json('bdev_get_bdevs');
    const exports = await t.json('nbd_get_exports');
    const cfg = await t.ok('save_config');
    const entries =
      (JSON.parse(cfg) as { subsystems: { config: { method: string; params?: Record<string, unknown> }[] }[] }).subsystems[0]?.config ?? [];
    expect(entries.filter((e) => e.method === 'bdev_null_create')).toEqual([
      { method: 'bdev_null_create', params: { name: 'n0', num_blocks: 16384, block_size: 4096, uuid: UUID } },
    ]);
    expect(entries.filter((e) => e.method === 'bdev_passthru_create').map((e) => e.params)).toEqual([
      { base_bdev_name: 'a0', name: 'pta', uuid: expect.any(String) as string },
      { base_bdev_name: 'n0', name: 'ptn', uuid: '0f3c2a8e-1b7d-4e62-9c55-7d1f0b2e4a90' },
    ]);
    fs.writeFileSync(t.file('saved.json'), cfg);
    expect(await t.stop()).toBe(0);

    const t2 = await target({ dir: t.dir, args: ['--config', t.file('saved.json')] });
    expect(await t2.json('bdev_get_bdevs')).toEqual(bdevs);
    expect(await t2.json('nbd_get_exports')).toEqual(exports);
    expect(await t2.ok('save_config')).toBe(cfg);
    expect(await t2.json('bdev_get_bdevs', '-b', 'a0')).toMatchObject([{ claimed: true }]);
  }, 60_000);

  it("load_config of save_config's entries re-creates them in a running server", async () => {
    const t = await target();
    await t.ok('bdev_null_create', 'n0', '8', '512');
    await t.ok('bdev_passthru_create', '-b', 'n0', '-p', 'pt0');
    const cfg = await t.ok('save_config');
    const bdevs = await t.json('bdev_get_bdevs');
    await t.ok('bdev_passthru_delete', 'pt0');
    await t.ok('bdev_null_delete', 'n0');
    expect(await t.json('bdev_get_bdevs')).toEqual([]);
    fs.writeFileSync(t.file('saved.json'), cfg);
    await t.ok('load_config', '-j', t.file('saved.json'));
    expect(await t.json('bdev_get_bdevs')).toEqual(bdevs);
  });
});
