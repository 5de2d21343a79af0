// The seed's sequences, verbatim with `aionbd rpc` in place of SPDK's scripts/rpc.py, checked
// with real NBD clients (qemu-io, nbdsh, fio); then save_config and a restart with --config.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { explain, run } from '../helpers/run.js';
import { nbdshEnv, nbdshTool, tool } from '../helpers/tools.js';
import { makeFile, targetPerTest } from './target.js';

const MiB = 2 ** 20;
const has = { qemuIo: tool('qemu-io'), fio: tool('fio'), nbdsh: nbdshTool() };

describe('the seed sequences with aionbd rpc', () => {
  const target = targetPerTest();

  it('bdev_aio_create FILE NAME 4096, then bdev_get_bdevs -b NAME', async () => {
    const t = await target();
    const img = makeFile(t.file('aiofile'), 10_240_000);
    expect(await t.ok('bdev_aio_create', img, 'AIO0', '4096')).toBe('AIO0');
    // 10,240,000 bytes hold 2500 blocks of 4096.
    expect(await t.json('bdev_get_bdevs', '-b', 'AIO0')).toMatchObject([
      { name: 'AIO0', block_size: 4096, num_blocks: 2500, product_name: 'AIO disk' },
    ]);
  });

  it.skipIf(!has.qemuIo || !has.nbdsh)(
    'an injected read failure reaches NBD clients as EIO, once',
    async () => {
      const t = await target();
      const img = makeFile(t.file('disk.img'), 16 * MiB);
      await t.ok('bdev_aio_create', img, 'aio0', '4096');
      expect(await t.ok('bdev_error_create', 'aio0')).toBe('true');
      expect(await t.ok('nbd_export_add', 'EE_aio0')).toBe('EE_aio0');
      expect(await t.ok('bdev_error_inject_error', 'EE_aio0', 'read', 'failure', '-n', '1')).toBe('true');
      const r1 = await run('qemu-io', ['-f', 'raw', '-c', 'read 0 4096', t.uri('EE_aio0')], { timeoutMs: 30_000 });
      expect(`${r1.stdout}${r1.stderr}`, explain(r1)).toMatch(/read failed: Input\/output error/);
      // The count is used up: the next read succeeds.
      const r2 = await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0 0 4096', t.uri('EE_aio0')], { timeoutMs: 30_000 });
      expect(r2.code, explain(r2)).toBe(0);
      expect(r2.stdout).toMatch(/read 4096\/4096 bytes/);
      // libnbd sees the errno itself.
      await t.ok('bdev_error_inject_error', 'EE_aio0', 'read', 'failure', '-n', '1');
      // libnbd's Error has .errno as the errno's name.
      const script = [
        'try:',
        '    h.pread(4096, 0)',
        '    print("no error")',
        'except nbd.Error as e:',
        '    print("errno", e.errno)',
      ].join('\n');
      const r3 = await run('nbdsh', ['-u', t.uri('EE_aio0'), '-c', script], { timeoutMs: 30_000, env: nbdshEnv() ?? process.env });
      expect(r3.stdout.trim(), explain(r3)).toBe('errno EIO');
      expect(await t.json('bdev_get_iostat', '-b', 'EE_aio0')).toMatchObject({ bdevs: [{ io_error: { failed: 2 } }] });
    },
    60_000,
  );

  it.skipIf(!has.fio)(
    'raid0 over two aio bdevs, exported, verified by fio (crc32c)',
    async () => {
      const t = await target();
      await t.ok('bdev_aio_create', makeFile(t.file('aio1.img'), 64 * MiB), 'aio_disk1', '4096');
      await t.ok('bdev_aio_create', makeFile(t.file('aio2.img'), 64 * MiB), 'aio_disk2', '4096');
      expect(await t.ok('bdev_raid_create', '-n', 'raid0_aio', '-z', '64', '-r', '0', '-b', 'aio_disk1 aio_disk2')).toBe('true');
      expect(await t.ok('nbd_export_add', 'raid0_aio')).toBe('raid0_aio');
      const r = await run(
        'fio',
        [
          '--name=raid',
          '--ioengine=nbd',
          `--uri=${t.uri('raid0_aio')}`,
          '--rw=randrw',
          '--bs=16k',
          '--iodepth=16',
          '--size=96M',
          '--verify=crc32c',
          '--verify_fatal=1',
          '--runtime=60',
          '--verify_state_save=0',
          '--output-format=json',
        ],
        { timeoutMs: 120_000, cwd: t.dir },
      );
      expect(r.code, explain(r)).toBe(0);
      const report = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as {
        jobs: { error: number; write: { io_bytes: number }; read: { io_bytes: number } }[];
      };
      expect(report.jobs[0]?.error).toBe(0);
      expect(report.jobs[0]?.write.io_bytes).toBeGreaterThan(0);
      expect(report.jobs[0]?.read.io_bytes).toBeGreaterThan(0);
      // Both members took writes: the strips really alternate.
      const st = (await t.json('bdev_get_iostat', '--names', 'aio_disk1,aio_disk2')) as { bdevs: { num_write_ops: number }[] };
      for (const b of st.bdevs) expect(b.num_write_ops).toBeGreaterThan(0);
    },
    150_000,
  );

  it('save_config, then a restart with --config, gives the same bdev_get_bdevs and exports', async () => {
    const t = await target();
    await t.ok('bdev_aio_create', makeFile(t.file('a1.img'), 8 * MiB), 'a1', '4096');
    await t.ok('bdev_aio_create', makeFile(t.file('a2.img'), 8 * MiB), 'a2', '4096');
    await t.ok('bdev_aio_create', makeFile(t.file('a3.img'), 4 * MiB), 'a3');
    await t.ok('bdev_raid_create', '-n', 'r0', '-z', '64', '-r', 'raid0', '-b', 'a1 a2');
    await t.ok('bdev_error_create', 'r0');
    await t.ok('bdev_malloc_create', '16', '512', '-b', 'm0');
    await t.ok('bdev_split_create', 'm0', '2');
    await t.ok('bdev_delay_create', '-b', 'm0p1', '-d', 'slow', '-r', '10', '-t', '100', '-w', '20', '-n', '200');
    await t.ok('nbd_export_add', 'EE_r0', '-n', 'vol', '-d', 'raid behind an error bdev');
    await t.ok('nbd_export_add', 'a3', '-r');
    // An lvstore is not in save_config: it comes back from its base's metadata.
    await t.ok('bdev_aio_create', makeFile(t.file('a4.img'), 16 * MiB), 'a4', '512');
    await t.ok('bdev_lvol_create_lvstore', 'a4', 'lvs', '-c', String(MiB));
    await t.ok('bdev_lvol_create', 'lv', '4', '-l', 'lvs', '-t');
    await t.ok('nbd_export_add', 'lvs/lv', '-n', 'lvexp');
    const bdevs = await t.json('bdev_get_bdevs');
    const exports = await t.json('nbd_get_exports');
    const cfg = await t.ok('save_config');
    fs.writeFileSync(t.file('saved.json'), cfg);
    expect(await t.stop()).toBe(0);

    const t2 = await target({ dir: t.dir, args: ['--config', t.file('saved.json')] });
    expect(await t2.json('bdev_get_bdevs')).toEqual(bdevs);
    expect(await t2.json('nbd_get_exports')).toEqual(exports);
    // The exports were announced as at any start.
    expect(t2.stdout).toMatch(/^aionbd: exporting "vol" \(16M, error bdev, block size 4096\)/m);
    expect(await t2.ok('save_config')).toBe(cfg);
    expect(await t2.json('bdev_lvol_get_lvstores')).toMatchObject([{ name: 'lvs', base_bdev: 'a4' }]);
  }, 60_000);

  it('a config file that cannot be applied stops the start with one clear line', async () => {
    const t = await target();
    fs.writeFileSync(
      t.file('bad.json'),
      JSON.stringify({ subsystems: [{ subsystem: 'bdev', config: [{ method: 'bdev_nonsense_create', params: {} }] }] }),
    );
    fs.writeFileSync(t.file('nonobj.json'), '[]');
    await t.stop();
    for (const [file, msg] of [
      ['bad.json', /config entry bdev_nonsense_create \{\} failed: Method not found/],
      ['nonobj.json', /not a JSON object/],
    ] as const) {
      const r = await run(
        process.execPath,
        [
          new URL('../../bin/aionbd.js', import.meta.url).pathname,
          'serve',
          '--no-rpc',
          '--listen',
          `unix:${t.file('n.sock')}`,
          '--config',
          t.file(file),
        ],
        { timeoutMs: 20_000, cwd: t.dir },
      );
      expect(r.code, explain(r)).toBe(1);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('aionbd: '))).toEqual([expect.stringMatching(msg)]);
    }
  }, 60_000);
});
