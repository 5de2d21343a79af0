// Every JSON-RPC method over the real socket, called the way a user calls it: `aionbd rpc`
// with rpc.py's arguments against `aionbd serve`.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain } from '../helpers/run.js';
import { makeFile, startTarget, type RpcTarget } from './target.js';

const MiB = 2 ** 20;

describe('aionbd rpc against aionbd serve', () => {
  let t: RpcTarget;
  beforeAll(async () => {
    t = await startTarget();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('rpc_get_methods and aionbd_get_version', async () => {
    const methods = (await t.json('rpc_get_methods')) as string[];
    for (const m of [
      'bdev_aio_create',
      'bdev_get_bdevs',
      'bdev_get_iostat',
      'bdev_raid_create',
      'nbd_export_add',
      'save_config',
      'load_config',
    ]) {
      expect(methods).toContain(m);
    }
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(await t.json('aionbd_get_version')).toMatchObject({
      version: `aionbd v${pkg.version}`,
      fields: { major: Number(pkg.version.split('.')[0]) },
    });
  });

  it('bdev_aio_create / bdev_get_bdevs / bdev_aio_rescan / bdev_aio_delete', async () => {
    const img = makeFile(t.file('aio.img'), 4 * MiB);
    expect(await t.ok('bdev_aio_create', img, 'aio0', '4096')).toBe('aio0');
    const [b] = (await t.json('bdev_get_bdevs', '-b', 'aio0')) as Record<string, unknown>[];
    expect(b).toMatchObject({
      name: 'aio0',
      product_name: 'AIO disk',
      block_size: 4096,
      num_blocks: 1024,
      claimed: false,
      supported_io_types: { read: true, write: true, flush: true, unmap: true, write_zeroes: true, nvme_admin: false },
      driver_specific: { aio: { filename: fs.realpathSync(img), block_size_override: true, readonly: false } },
    });
    expect(Object.keys(b?.['supported_io_types'] as object)).toHaveLength(22);
    expect(b?.['aliases']).toEqual([b?.['uuid']]);
    // By UUID too.
    expect(await t.json('bdev_get_bdevs', '-b', String(b?.['uuid']))).toEqual([b]);
    fs.truncateSync(img, 8 * MiB);
    expect(await t.ok('bdev_aio_rescan', 'aio0')).toBe('true');
    expect(await t.json('bdev_get_bdevs', '-b', 'aio0')).toMatchObject([{ num_blocks: 2048 }]);
    expect(await t.ok('bdev_aio_create', img, 'aio_ro', '--readonly')).toBe('aio_ro');
    expect(await t.json('bdev_get_bdevs', '-b', 'aio_ro')).toMatchObject([{ driver_specific: { aio: { readonly: true } } }]);
    expect(await t.ok('bdev_aio_delete', 'aio_ro')).toBe('true');
    expect(await t.ok('bdev_aio_delete', 'aio0')).toBe('true');
    const gone = await t.rpc('bdev_get_bdevs', '-b', 'aio0');
    expect(gone.code, explain(gone)).toBe(1);
    expect(gone.stderr).toBe('aionbd: No such device: bdev "aio0" does not exist\n');
  });

  it('bdev_malloc_create (SIZE_MB BLOCK_SIZE) / bdev_malloc_delete, and the raw JSON form', async () => {
    expect(await t.ok('bdev_malloc_create', '8', '512', '-b', 'Mal0')).toBe('Mal0');
    expect(await t.json('bdev_get_bdevs', '-b', 'Mal0')).toMatchObject([
      { product_name: 'Malloc disk', block_size: 512, num_blocks: 16384 },
    ]);
    expect(await t.ok('bdev_malloc_create', '{"name": "Mal1", "block_size": 4096, "num_blocks": 64}')).toBe('Mal1');
    expect(await t.ok('bdev_malloc_delete', 'Mal1')).toBe('true');
    expect(await t.ok('bdev_malloc_delete', 'Mal0')).toBe('true');
  });

  it('the error bdev: create, inject, resume, delete', async () => {
    await t.ok('bdev_malloc_create', '4', '512', '-b', 'em');
    expect(await t.ok('bdev_error_create', 'em')).toBe('true');
    expect(await t.json('bdev_get_bdevs', '-b', 'EE_em')).toMatchObject([
      { product_name: 'Error Injection Disk', driver_specific: { error_disk: { base_bdev: 'em' } } },
    ]);
    expect(await t.json('bdev_get_bdevs', '-b', 'em')).toMatchObject([{ claimed: true, claim_type: 'exclusive_write' }]);
    expect(await t.ok('bdev_error_inject_error', 'EE_em', 'read', 'failure', '-n', '1')).toBe('true');
    expect(await t.ok('bdev_error_inject_error', 'EE_em', 'write', 'corrupt_data', '-n', '2', '-q', '0', '-o', '10', '-v', '255')).toBe(
      'true',
    );
    expect(await t.ok('bdev_error_resume_pending', 'EE_em')).toBe('true');
    const bad = await t.rpc('bdev_error_inject_error', 'EE_em', 'read', 'explode');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^aionbd: Invalid parameters: params\/error_type must be equal to one of the allowed values/);
    const claimed = await t.rpc('bdev_malloc_delete', 'em');
    expect(claimed.stderr).toBe('aionbd: Device or resource busy: bdev "em" is in use: claimed by the error module (EE_em)\n');
    expect(await t.ok('bdev_error_delete', 'EE_em')).toBe('true');
    expect(await t.ok('bdev_malloc_delete', 'em')).toBe('true');
  });

  it('bdev_error_create BASE NAME names the error bdev; the config says so, only then', async () => {
    await t.ok('bdev_malloc_create', '4', '512', '-b', 'nm');
    expect(await t.ok('bdev_error_create', 'nm', 'faulty')).toBe('true');
    expect(await t.json('bdev_get_bdevs', '-b', 'faulty')).toMatchObject([
      { name: 'faulty', product_name: 'Error Injection Disk', driver_specific: { error_disk: { base_bdev: 'nm' } } },
    ]);
    expect((await t.rpc('bdev_get_bdevs', '-b', 'EE_nm')).code).toBe(1);
    const cfg = (await t.json('framework_get_config', 'bdev')) as { method: string; params?: Record<string, unknown> }[];
    expect(cfg.filter((e) => e.method === 'bdev_error_create')).toEqual([
      { method: 'bdev_error_create', params: { base_name: 'nm', name: 'faulty', uuid: expect.any(String) } },
    ]);
    expect(await t.ok('bdev_error_inject_error', 'faulty', 'read', 'failure')).toBe('true');
    const bad = await t.rpc('bdev_error_create', 'nm', 'bad name');
    expect(bad.stderr).toMatch(/^aionbd: .*bad bdev name "bad name"/);
    expect(await t.ok('bdev_error_delete', 'faulty')).toBe('true');
    // SPDK's form: EE_<base>, and SPDK's config entry.
    expect(await t.ok('bdev_error_create', 'nm')).toBe('true');
    const spdk = (await t.json('framework_get_config', 'bdev')) as { method: string; params?: Record<string, unknown> }[];
    expect(spdk.filter((e) => e.method === 'bdev_error_create')).toEqual([
      { method: 'bdev_error_create', params: { base_name: 'nm', uuid: expect.any(String) } },
    ]);
    expect(await t.ok('bdev_error_delete', 'EE_nm')).toBe('true');
    expect(await t.ok('bdev_malloc_delete', 'nm')).toBe('true');
  });

  it('the delay bdev: create, update latency, delete', async () => {
    await t.ok('bdev_malloc_create', '4', '512', '-b', 'dm');
    expect(await t.ok('bdev_delay_create', '-b', 'dm', '-d', 'Delay0', '-r', '100', '-t', '1000', '-w', '200', '-n', '2000')).toBe(
      'Delay0',
    );
    expect(await t.ok('bdev_delay_update_latency', 'Delay0', 'avg_read', '150')).toBe('true');
    expect(await t.json('bdev_get_bdevs', '-b', 'Delay0')).toMatchObject([
      {
        product_name: 'delay',
        driver_specific: {
          delay: { base_bdev_name: 'dm', avg_read_latency: 150, p99_read_latency: 1000, avg_write_latency: 200, p99_write_latency: 2000 },
        },
      },
    ]);
    expect(await t.ok('bdev_delay_delete', 'Delay0')).toBe('true');
    expect(await t.ok('bdev_malloc_delete', 'dm')).toBe('true');
  });

  it('raid0: bdev_raid_create -n -z -r -b "A B", bdev_raid_get_bdevs, bdev_raid_delete', async () => {
    await t.ok('bdev_malloc_create', '4', '512', '-b', 'ra');
    await t.ok('bdev_malloc_create', '4', '512', '-b', 'rb');
    expect(await t.ok('bdev_raid_create', '-n', 'r0', '-z', '64', '-r', '0', '-b', 'ra rb')).toBe('true');
    expect(await t.json('bdev_raid_get_bdevs', 'all')).toEqual([
      expect.objectContaining({
        name: 'r0',
        strip_size_kb: 64,
        state: 'online',
        raid_level: 'raid0',
        num_base_bdevs: 2,
        num_base_bdevs_discovered: 2,
      }),
    ]);
    expect(await t.json('bdev_get_bdevs', '-b', 'r0')).toMatchObject([
      { product_name: 'Raid Volume', num_blocks: 16384, driver_specific: { raid: { strip_size_kb: 64 } } },
    ]);
    expect(await t.ok('bdev_raid_delete', 'r0')).toBe('true');
    for (const b of ['ra', 'rb']) await t.ok('bdev_malloc_delete', b);
  });

  it('bdev_split_create BASE COUNT [-s MB] / bdev_split_delete', async () => {
    await t.ok('bdev_malloc_create', '8', '512', '-b', 'sm');
    expect(await t.json('bdev_split_create', 'sm', '4', '-s', '1')).toEqual(['smp0', 'smp1', 'smp2', 'smp3']);
    expect(await t.json('bdev_get_bdevs', '-b', 'smp3')).toMatchObject([
      { product_name: 'Split Disk', num_blocks: 2048, driver_specific: { split: { base_bdev: 'sm', offset_blocks: 6144 } } },
    ]);
    expect(await t.ok('bdev_split_delete', 'sm')).toBe('true');
    expect(await t.ok('bdev_malloc_delete', 'sm')).toBe('true');
  });

  it('nbd_export_add / nbd_get_exports / nbd_export_remove, and a claimed bdev is refused', async () => {
    await t.ok('bdev_malloc_create', '1', '512', '-b', 'xm');
    expect(await t.ok('nbd_export_add', 'xm', '-n', 'exp1', '-r', '-d', 'a RAM disk')).toBe('exp1');
    expect(await t.json('nbd_get_exports')).toEqual([
      { name: 'exp1', bdev_name: 'xm', readonly: true, description: 'a RAM disk', size: MiB },
    ]);
    expect(await t.ok('nbd_export_remove', 'exp1')).toBe('true');
    expect(await t.json('nbd_get_exports')).toEqual([]);
    await t.ok('bdev_error_create', 'xm');
    const r = await t.rpc('nbd_export_add', 'xm');
    expect(r.stderr).toBe('aionbd: Operation not permitted: bdev "xm" is claimed by the error module (EE_xm)\n');
    await t.ok('bdev_error_delete', 'EE_xm');
    await t.ok('bdev_malloc_delete', 'xm');
  });

  it('lvol: create_lvstore, create (thin and thick), get_lvstores, resize, export, delete', async () => {
    // SPDK's nbd_with_lvol_verify: malloc 16 MiB/512 -> lvstore -> 4 MiB lvol -> export.
    await t.ok('bdev_malloc_create', '16', '512', '-b', 'lm');
    const lvsUuid = await t.ok('bdev_lvol_create_lvstore', 'lm', 'lvs', '-c', String(MiB));
    expect(lvsUuid).toMatch(/^[0-9a-f-]{36}$/);
    const [store] = (await t.json('bdev_lvol_get_lvstores', '-l', 'lvs')) as Record<string, unknown>[];
    expect(store).toMatchObject({ uuid: lvsUuid, name: 'lvs', base_bdev: 'lm', block_size: 512, cluster_size: MiB });
    const lvol = await t.ok('bdev_lvol_create', 'lvol', '4', '-l', 'lvs');
    const thin = await t.ok('bdev_lvol_create', '-n', 'thin', '-s', '2M', '-u', lvsUuid, '-t');
    expect(await t.json('bdev_get_bdevs', '-b', 'lvs/lvol')).toMatchObject([
      { name: lvol, aliases: ['lvs/lvol'], num_blocks: 8192, product_name: 'Logical Volume' },
    ]);
    expect(await t.json('bdev_get_bdevs', '-b', thin)).toMatchObject([
      { driver_specific: { lvol: { thin_provision: true, lvol_store_uuid: lvsUuid } } },
    ]);
    expect(await t.json('bdev_lvol_get_lvstores', '-u', lvsUuid)).toMatchObject([
      { free_clusters: (store?.['total_data_clusters'] as number) - 4 },
    ]);
    expect(await t.ok('bdev_lvol_resize', 'lvs/thin', '3')).toBe('true');
    expect(await t.ok('nbd_export_add', 'lvs/lvol', '-n', 'vol')).toBe('vol');
    expect(await t.json('nbd_get_exports', '-n', 'vol')).toMatchObject([{ bdev_name: lvol, size: 4 * MiB }]);
    const busy = await t.rpc('bdev_lvol_delete_lvstore', '-l', 'lvs');
    expect(busy.stderr).toMatch(/Device or resource busy: .*still has 2 lvol/);
    expect(await t.ok('bdev_lvol_delete', 'lvs/lvol')).toBe('true');
    expect(await t.ok('bdev_lvol_delete', thin)).toBe('true');
    expect(await t.ok('bdev_lvol_delete_lvstore', '-l', 'lvs')).toBe('true');
    expect(await t.ok('bdev_malloc_delete', 'lm')).toBe('true');
  });

  it('bdev_get_iostat and bdev_reset_iostat', async () => {
    await t.ok('bdev_malloc_create', '1', '512', '-b', 'im');
    const st = (await t.json('bdev_get_iostat', '-b', 'im')) as Record<string, unknown>;
    expect(st).toMatchObject({ tick_rate: 1e9, bdevs: [{ name: 'im', num_read_ops: 0, bytes_read: 0, io_error: {} }] });
    expect(await t.json('bdev_get_iostat', '--names', 'im', '-c')).toMatchObject({ name: 'im', channels: [{ thread_id: 1 }] });
    expect(await t.ok('bdev_reset_iostat', '-b', 'im', '-m', 'all')).toBe('true');
    await t.ok('bdev_malloc_delete', 'im');
  });

  it('save_config, framework_get_config and bdev_wait_for_examine', async () => {
    await t.ok('bdev_malloc_create', '1', '512', '-b', 'cm');
    const cfg = (await t.json('save_config')) as { subsystems: { subsystem: string; config: { method: string }[] }[] };
    expect(cfg.subsystems.map((s) => s.subsystem)).toEqual(['bdev', 'nbd']);
    expect(cfg.subsystems[0]?.config.at(-1)).toEqual({ method: 'bdev_wait_for_examine' });
    expect(await t.json('framework_get_config', 'bdev')).toEqual(cfg.subsystems[0]?.config);
    expect(await t.ok('bdev_wait_for_examine')).toBe('true');
    expect(await t.ok('save_config', '-i', '0')).not.toContain('\n');
    await t.ok('bdev_malloc_delete', 'cm');
  });

  it("exits 1 with the server's message, and 2 for bad usage", async () => {
    const unknown = await t.rpc('no_such_method');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('aionbd: Method not found\n');
    const missing = await t.rpc('bdev_aio_create', t.file('x.img'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^aionbd: bdev_aio_create: missing NAME/);
    const noServer = await t.rpc('-s', t.file('nope.sock'), 'rpc_get_methods');
    expect(noServer.code).toBe(1);
    expect(noServer.stderr).toMatch(/cannot reach the JSON-RPC socket .*nope\.sock: no such socket/);
  });
});
