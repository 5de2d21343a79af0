// The RBD bdev against a real one-node Ceph cluster (test/helpers/ceph.ts): `serve --rbd`, the
// RPC methods in rpc.py's forms, real NBD clients (nbdinfo, nbdcopy, qemu-img, qemu-io, fio)
// checked against what `rbd export` reads from the cluster itself, raid0 over two images, and
// the save_config / --config round trip.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CephCluster } from '../../src/testing/ceph.js';
import { haveCeph, imageName, sharedCeph } from '../helpers/ceph.js';
import { explain, run, type RunResult } from '../helpers/run.js';
import { BIN, startServer, stopAllServers, type TestServer } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { nbdshEnv, nbdshTool, tool } from '../helpers/tools.js';

const MiB = 1 << 20;
const have = haveCeph() && tool('nbdinfo', 'nbdcopy', 'qemu-img', 'qemu-io', 'fio');

function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  let x = seed >>> 0;
  for (let i = 0; i < len; i += 4) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}

const sha = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

describe.skipIf(!have)('RBD bdev over a one-node Ceph cluster', () => {
  let ceph: CephCluster;
  let dir: string;
  let srv: TestServer;
  let rpcSock: string;
  let served: string;

  async function rpc(...args: string[]): Promise<RunResult> {
    return run(process.execPath, [BIN, 'rpc', '-s', rpcSock, ...args], { timeoutMs: 60_000 });
  }
  async function rpcOk(...args: string[]): Promise<unknown> {
    const r = await rpc(...args);
    expect(r.code, explain(r)).toBe(0);
    // aionbd rpc prints a string result as it is, anything else as JSON.
    try {
      return JSON.parse(r.stdout) as unknown;
    } catch {
      return r.stdout.trim();
    }
  }
  async function rbdExport(image: string): Promise<Buffer> {
    const out = path.join(dir, `${image}.export`);
    fs.rmSync(out, { force: true });
    await ceph.rbd(['export', '--no-progress', `${ceph.pool}/${image}`, out]);
    const b = fs.readFileSync(out);
    fs.rmSync(out);
    return b;
  }
  async function serve(extra: string[], exports: number): Promise<TestServer> {
    return startServer({
      rawArgs: [
        '--listen',
        `unix:${path.join(dir, 'nbd.sock')}`,
        '--rpc',
        rpcSock,
        '--allow-path',
        dir,
        '--allow-path',
        ceph.dir,
        '--log-level',
        'warn',
        ...extra,
      ],
      exports,
      timeoutMs: 60_000,
    });
  }

  beforeAll(async () => {
    ceph = await sharedCeph();
    dir = tmpDir('aionbd-rbd-');
    rpcSock = path.join(dir, 'rpc.sock');
    served = imageName('served');
    await ceph.createImage(served, '64M');
    srv = await serve(['--rbd', `${ceph.pool}/${served},conf=${ceph.conf},name=ra,timeout=20,description=on ceph`], 1);
  }, 120_000);

  afterAll(async () => {
    await stopAllServers();
    if (dir !== undefined) rmrf(dir);
  }, 60_000);

  it('serve --rbd exports the image: its size, and block status from the object map', async () => {
    expect(srv.stdout).toMatch(/exporting "ra" \(64M, rbd bdev, block size 512\)/);
    const info = await run('nbdinfo', ['--json', srv.uri('ra')], { timeoutMs: 30_000 });
    expect(info.code, explain(info)).toBe(0);
    const j = JSON.parse(info.stdout) as { exports: { 'export-size': number; description?: string }[] };
    expect(j.exports[0]?.['export-size']).toBe(64 * MiB);
    expect(j.exports[0]?.description).toBe('on ceph');
    const w = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 9M 64k', srv.uri('ra')], { timeoutMs: 30_000 });
    expect(w.code, explain(w)).toBe(0);
    const map = await run('nbdinfo', ['--map', srv.uri('ra')], { timeoutMs: 30_000 });
    expect(map.code, explain(map)).toBe(0);
    const rows = map.stdout
      .trim()
      .split('\n')
      .map((l) =>
        l
          .trim()
          .split(/\s+/)
          .map((x, i) => (i < 3 ? Number(x) : x)),
      );
    expect(rows.reduce((n, r) => n + (r[1] as number), 0)).toBe(64 * MiB);
    // Whole 4 MiB objects: the one written, [8M, 12M), is data; the rest is hole and zero.
    const data = rows.filter((r) => r[2] === 0);
    expect(data.reduce((n, r) => n + (r[1] as number), 0)).toBe(4 * MiB);
    expect(data[0]?.[0]).toBe(8 * MiB);
    expect(rows.filter((r) => r[2] === 3).reduce((n, r) => n + (r[1] as number), 0)).toBe(60 * MiB);
  }, 60_000);

  it.skipIf(!nbdshTool())(
    'WRITE_ZEROES: NO_HOLE leaves the objects allocated, a plain one may free them; FAST_ZERO with NO_HOLE is ENOTSUP',
    async () => {
      // Objects 5 and 6 of the image ([20M, 28M)), neither touched by the other tests.
      const script = String.raw`
import nbd, errno, os
h.add_meta_context('base:allocation')
h.connect_uri(os.environ['NBD_URI'])
assert h.can_fast_zero()
M = 1024 * 1024
h.pwrite(b'Z' * (4 * M), 24 * M)
h.zero(4 * M, 20 * M, nbd.CMD_FLAG_NO_HOLE)
h.zero(4 * M, 24 * M, nbd.CMD_FLAG_FAST_ZERO)
try:
    h.zero(4 * M, 20 * M, nbd.CMD_FLAG_FAST_ZERO | nbd.CMD_FLAG_NO_HOLE)
    raise SystemExit('fast zero with NO_HOLE did not fail')
except nbd.Error as e:
    assert e.errnum == errno.ENOTSUP, e
assert h.pread(8 * M, 20 * M) == bytes(8 * M)
seen = []
h.block_status(8 * M, 20 * M, lambda ctx, off, ents, err: seen.extend(ents))
print(seen)
`;
      const r = await run('nbdsh', ['-c', script], { timeoutMs: 60_000, env: { ...(nbdshEnv() ?? process.env), NBD_URI: srv.uri('ra') } });
      expect(r.code, explain(r)).toBe(0);
      const ents = JSON.parse(r.stdout.trim()) as number[];
      // (length, flags) pairs: [20M, 24M) is data (0), [24M, 28M) hole and zero (3).
      expect(ents.slice(0, 4)).toEqual([4 * MiB, 0, 4 * MiB, 3]);
    },
    90_000,
  );

  it('RPC: register a cluster, create, resize (by us and by `rbd resize`), delete, unregister', async () => {
    const img = imageName('rpc');
    await ceph.createImage(img, '32M');
    expect(await rpcOk('bdev_rbd_register_cluster', 'c0', '--config-file', ceph.conf, '--config-param', 'rados_osd_op_timeout=20')).toBe(
      'c0',
    );
    expect(await rpcOk('bdev_rbd_get_clusters_info', '-b', 'c0')).toEqual({
      cluster_name: 'c0',
      config_file: ceph.conf,
      config_param: { rados_osd_op_timeout: '20' },
    });
    const again = await rpc('bdev_rbd_register_cluster', 'c0', '--config-file', ceph.conf);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^aionbd: .*an RBD cluster named "c0" is registered already\n$/);
    expect(await rpcOk('bdev_rbd_create', ceph.pool, img, '4096', '-c', 'c0')).toBe('Ceph0');
    const [b] = (await rpcOk('bdev_get_bdevs', '-b', 'Ceph0')) as {
      product_name: string;
      num_blocks: number;
      block_size: number;
      driver_specific: unknown;
    }[];
    expect(b).toMatchObject({ product_name: 'Ceph Rbd Disk', block_size: 4096, num_blocks: (32 * MiB) / 4096 });
    expect(b?.driver_specific).toEqual({
      rbd: { pool_name: ceph.pool, rbd_name: img, cluster_name: 'c0', readonly: false, queue_depth: 128 },
    });
    // The cluster is in use: refused, with the bdev named.
    const busy = await rpc('bdev_rbd_unregister_cluster', 'c0');
    expect(busy.stderr).toMatch(/RBD cluster "c0" is in use by "Ceph0"/);
    // Ours: it only grows.
    expect(await rpcOk('bdev_rbd_resize', 'Ceph0', '48')).toBe(true);
    const shrink = await rpc('bdev_rbd_resize', 'Ceph0', '16');
    expect(shrink.stderr).toMatch(/an RBD bdev only grows/);
    expect(((await rpcOk('bdev_get_bdevs', '-b', 'Ceph0')) as { num_blocks: number }[])[0]?.num_blocks).toBe((48 * MiB) / 4096);
    expect(JSON.parse(await ceph.rbd(['info', '--format', 'json', `${ceph.pool}/${img}`])).size).toBe(48 * MiB);
    // Someone else's: the header watch tells the bdev.
    await ceph.rbd(['resize', '--no-progress', '--size', '64M', `${ceph.pool}/${img}`]);
    let blocks = 0;
    for (const until = Date.now() + 20_000; Date.now() < until && blocks !== (64 * MiB) / 4096; ) {
      blocks = ((await rpcOk('bdev_get_bdevs', '-b', 'Ceph0')) as { num_blocks: number }[])[0]?.num_blocks ?? 0;
      if (blocks !== (64 * MiB) / 4096) await new Promise((r) => setTimeout(r, 200));
    }
    expect(blocks).toBe((64 * MiB) / 4096);
    // A missing image, a missing cluster: one line each.
    const none = await rpc('bdev_rbd_create', ceph.pool, 'no-such-image', '512', '-c', 'c0', '-b', 'x');
    expect(none.stderr).toMatch(/^aionbd: .*cannot open RBD image rbd\/no-such-image: rbd_open: No such file or directory\n$/);
    const noCluster = await rpc('bdev_rbd_create', ceph.pool, img, '512', '-c', 'nope');
    expect(noCluster.stderr).toMatch(/no RBD cluster "nope" is registered/);
    expect(await rpcOk('bdev_rbd_delete', 'Ceph0')).toBe(true);
    expect(await rpcOk('bdev_rbd_unregister_cluster', 'c0')).toBe(true);
    expect(((await rpcOk('bdev_rbd_get_clusters_info')) as { cluster_name: string }[]).map((c) => c.cluster_name)).toEqual(['cluster0']);
    await ceph.removeImage(img);
  }, 120_000);

  it('librados runs one completion thread unless the configuration asks for more', async () => {
    // librados names its asio threads io_context_pool; aionbd sets librados_thread_count=1
    // where the configuration leaves Ceph's 2, and a value given in --config-param wins.
    const completionThreads = (): number =>
      fs.readdirSync(`/proc/${srv.pid}/task`).filter((t) => {
        try {
          return fs.readFileSync(`/proc/${srv.pid}/task/${t}/comm`, 'utf8').trim() === 'io_context_pool';
        } catch {
          return false; // the thread ended meanwhile
        }
      }).length;
    expect(completionThreads()).toBe(1);
    expect(await rpcOk('bdev_rbd_register_cluster', 'lt3', '--config-file', ceph.conf, '--config-param', 'librados_thread_count=3')).toBe(
      'lt3',
    );
    expect(completionThreads()).toBe(1 + 3);
    expect(await rpcOk('bdev_rbd_unregister_cluster', 'lt3')).toBe(true);
  }, 60_000);

  it('a cluster that does not answer fails the register within client_mount_timeout', async () => {
    const t0 = Date.now();
    const r = await rpc(
      'bdev_rbd_register_cluster',
      'gone',
      '--config-param',
      'mon_host=127.0.0.1:9',
      '--config-param',
      'client_mount_timeout=2',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^aionbd: .*cannot connect to the Ceph cluster: rados_connect: Connection timed out\n$/);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(await rpcOk('bdev_rbd_get_clusters_info')).not.toContainEqual(expect.objectContaining({ cluster_name: 'gone' }));
  }, 30_000);

  it('a bdev with a connection of its own (user_id/config), config_file outside --allow-path refused', async () => {
    const img = imageName('own');
    await ceph.createImage(img, '8M');
    const name = await rpcOk(
      'bdev_rbd_create',
      ceph.pool,
      img,
      '512',
      '-b',
      'own',
      '--config',
      `mon_host=${ceph.monHost}`,
      '--config',
      'auth_client_required=none',
      '--user-id',
      'admin',
    );
    expect(name).toBe('own');
    const w = await run(
      'qemu-io',
      ['-f', 'raw', '-c', 'write -P 0x11 0 1M', '-c', 'read -P 0x11 0 1M', `nbd+unix:///own?socket=${path.join(dir, 'nbd.sock')}`],
      { timeoutMs: 30_000 },
    );
    expect(w.code).not.toBe(0); // not exported yet
    await rpcOk('nbd_export_add', 'own');
    const w2 = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x11 0 1M', '-c', 'read -P 0x11 0 1M', srv.uri('own')], {
      timeoutMs: 30_000,
    });
    expect(w2.code, explain(w2)).toBe(0);
    expect(w2.stdout).not.toMatch(/Pattern verification failed/);
    await rpcOk('nbd_export_remove', 'own');
    await rpcOk('bdev_rbd_delete', 'own');
    expect(sha((await rbdExport(img)).subarray(0, MiB))).toBe(sha(Buffer.alloc(MiB, 0x11)));
    const outside = await rpc('bdev_rbd_register_cluster', 'c9', '--config-file', '/etc/hostname');
    expect(outside.stderr).toMatch(/outside the allowed paths/);
    // Ceph options that name files are held to --allow-path too.
    for (const opt of ['keyring=/etc/hostname', 'log_file=/etc/aionbd-test.log', 'admin_socket=/run/x.asok', 'run_dir=/etc']) {
      const r = await rpc('bdev_rbd_create', ceph.pool, img, '512', '-b', 'own2', '--config', `mon_host=${ceph.monHost}`, '--config', opt);
      expect(r.stderr, opt).toMatch(/outside the allowed paths/);
    }
    await ceph.removeImage(img);
  }, 90_000);

  it('nbdcopy in, `rbd export` out: the same bytes; qemu-img compare and nbdcopy back agree', async () => {
    const src = path.join(dir, 'src.raw');
    const data = Buffer.alloc(64 * MiB);
    pattern(5 * MiB, 1).copy(data, 3 * MiB);
    pattern(MiB, 2).copy(data, 40 * MiB + 512);
    fs.writeFileSync(src, data);
    const cp = await run('nbdcopy', [src, srv.uri('ra')], { timeoutMs: 120_000 });
    expect(cp.code, explain(cp)).toBe(0);
    expect(sha(await rbdExport(served))).toBe(sha(data));
    const cmp = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, srv.uri('ra')], { timeoutMs: 120_000 });
    expect(cmp.code, explain(cmp)).toBe(0);
    const back = path.join(dir, 'back.raw');
    const cp2 = await run('nbdcopy', [srv.uri('ra'), back], { timeoutMs: 120_000 });
    expect(cp2.code, explain(cp2)).toBe(0);
    expect(sha(fs.readFileSync(back))).toBe(sha(data));
    fs.rmSync(back);
    fs.rmSync(src);
  }, 180_000);

  it('fio randrw 4k QD32 with crc32c verify through NBD', async () => {
    const r = await run(
      'fio',
      [
        '--name=rbd',
        '--ioengine=nbd',
        `--uri=${srv.uri('ra')}`,
        '--rw=randrw',
        '--bs=4k',
        '--iodepth=32',
        '--size=16M',
        '--verify=crc32c',
        '--verify_fatal=1',
        '--runtime=60',
        '--verify_state_save=0',
        '--output-format=json',
      ],
      { timeoutMs: 120_000, cwd: dir },
    );
    expect(r.code, explain(r)).toBe(0);
    const report = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as {
      jobs: { error: number; write: { io_bytes: number }; read: { io_bytes: number } }[];
    };
    expect(report.jobs[0]?.error).toBe(0);
    expect(report.jobs[0]?.write.io_bytes).toBeGreaterThan(0);
    expect(report.jobs[0]?.read.io_bytes).toBeGreaterThan(0);
    expect(r.stderr).not.toMatch(/verify|error/i);
  }, 150_000);

  it('raid0 over two RBD images: strips land on alternate images', async () => {
    const a = imageName('r0a');
    const b = imageName('r0b');
    await ceph.createImage(a, '16M');
    await ceph.createImage(b, '16M');
    await rpcOk('bdev_rbd_register_cluster', 'c1', '--config-file', ceph.conf);
    await rpcOk('bdev_rbd_create', ceph.pool, a, '512', '-c', 'c1', '-b', 'ra0');
    await rpcOk('bdev_rbd_create', ceph.pool, b, '512', '-c', 'c1', '-b', 'ra1');
    await rpcOk('bdev_raid_create', '-n', 'raid', '-z', '64', '-r', '0', '-b', 'ra0 ra1');
    await rpcOk('nbd_export_add', 'raid');
    const data = pattern(4 * MiB, 3);
    const src = path.join(dir, 'raid.src');
    fs.writeFileSync(src, data);
    const cp = await run('nbdcopy', ['--destination-is-zero', src, srv.uri('raid')], { timeoutMs: 60_000 });
    expect(cp.code, explain(cp)).toBe(0);
    const [ea, eb] = [await rbdExport(a), await rbdExport(b)];
    const strip = 64 * 1024;
    for (let i = 0; i < data.length / strip; i++) {
      const member = i % 2 === 0 ? ea : eb;
      const at = Math.floor(i / 2) * strip;
      expect(member.subarray(at, at + strip).equals(data.subarray(i * strip, (i + 1) * strip)), `strip ${i}`).toBe(true);
    }
    fs.rmSync(src);
  }, 120_000);

  it('save_config: clusters before bdevs; a new server from --config serves the same data', async () => {
    const cfg = (await rpcOk('save_config')) as {
      subsystems: { subsystem: string; config: { method: string; params?: Record<string, unknown> }[] }[];
    };
    const methods = cfg.subsystems.find((s) => s.subsystem === 'bdev')?.config.map((e) => e.method) ?? [];
    expect(methods.indexOf('bdev_rbd_register_cluster')).toBeLessThan(methods.indexOf('bdev_rbd_create'));
    expect(methods.filter((m) => m === 'bdev_rbd_register_cluster')).toHaveLength(2); // serve's cluster0 and c1
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify(cfg));
    const before = await run('nbdcopy', [srv.uri('raid'), path.join(dir, 'before.raw')], { timeoutMs: 60_000 });
    expect(before.code, explain(before)).toBe(0);
    expect((await srv.stop('SIGTERM')).code).toBe(0);
    srv = await serve(['--config', file], 2);
    expect(srv.stdout).toMatch(/exporting "ra" /);
    expect(srv.stdout).toMatch(/exporting "raid" /);
    const after = await run('nbdcopy', [srv.uri('raid'), path.join(dir, 'after.raw')], { timeoutMs: 60_000 });
    expect(after.code, explain(after)).toBe(0);
    expect(sha(fs.readFileSync(path.join(dir, 'after.raw')))).toBe(sha(fs.readFileSync(path.join(dir, 'before.raw'))));
    const info = (await rpcOk('bdev_rbd_get_clusters_info')) as { cluster_name: string }[];
    expect(info.map((c) => c.cluster_name).sort()).toEqual(['c1', 'cluster0']);
  }, 120_000);

  it('without librbd: serve --rbd ends with one line naming the package', async () => {
    const env = { ...process.env, AIONBD_LIBRBD: '/nonexistent/librbd.so.1' };
    const r = await run(
      process.execPath,
      [BIN, 'serve', '--listen', `unix:${path.join(dir, 'x.sock')}`, '--no-rpc', '--rbd', `${ceph.pool}/${served},conf=${ceph.conf}`],
      { env, timeoutMs: 30_000 },
    );
    expect(r.code).toBe(1);
    // A failed start ends with its one line (after the JSON record of the same failure).
    expect(r.stderr.trimEnd().split('\n').at(-1)).toMatch(
      /^aionbd: librbd is not installed \(.*\): install the librbd1 package \(apt-get install librbd1\)$/,
    );
  }, 60_000);
});
