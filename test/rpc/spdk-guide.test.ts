// SPDK's AIO guide, typed as a user types it: every line runs through bash, word for word, with
// `aionbd rpc` in place of `rpc.py` (a wrapper on PATH points it at the test's server) and the
// paths of this machine in place of the guide's. The block-device lines use loop devices; without
// root (and never with CI=true) they fall back to files, which says so. Then the guide's fio job,
// over NBD and shortened to a few seconds, on the lvol and the raid it made.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain, run, type RunResult } from '../helpers/run.js';
import { BIN } from '../helpers/server.js';
import { isCI, onPath, tool } from '../helpers/tools.js';
import { startTarget, type RpcTarget } from './target.js';

const MiB = 2 ** 20;
const DISK_SIZE = 128 * MiB;
const haveFio = tool('fio');

// The guide, in order. Lines marked "not the guide's" only make room for the next section.
const GUIDE = String.raw`
truncate -s 2G aio_test.img
aionbd rpc bdev_aio_create aio_test.img aio_test 4096
aionbd rpc bdev_get_bdevs -b aio_test
aionbd rpc bdev_aio_create $DISK1 aio_disk1
aionbd rpc bdev_aio_create $DISK2 aio_disk2
aionbd rpc bdev_get_bdevs -b aio_disk1
aionbd rpc bdev_error_create aio_test error_test
aionbd rpc bdev_get_bdevs -b error_test
aionbd rpc bdev_error_delete error_test
aionbd rpc bdev_error_create aio_test
aionbd rpc bdev_error_delete EE_aio_test
aionbd rpc bdev_lvol_create_lvstore aio_test lvs0
aionbd rpc bdev_lvol_create -l lvs0 -n vol1 -s 1073741824
aionbd rpc bdev_lvol_create vol2 512 -l lvs0
aionbd rpc bdev_lvol_create -l lvs0 -n vol3 -s 256M
aionbd rpc bdev_get_bdevs -b lvs0/vol1
aionbd rpc bdev_raid_create -n raid0_aio -z 64 -r 0 -b "aio_disk1 aio_disk2"
aionbd rpc bdev_get_bdevs -b raid0_aio
aionbd rpc bdev_get_iostat -b aio_test
`
  .trim()
  .split('\n');

/** The block devices of the guide: loop devices as root, else plain files. */
interface Disks {
  paths: [string, string];
  loop: boolean;
  release(): void;
}

function makeDisks(dir: string): Disks {
  const files = [path.join(dir, 'disk1.img'), path.join(dir, 'disk2.img')] as const;
  for (const f of files) {
    fs.writeFileSync(f, '');
    fs.truncateSync(f, DISK_SIZE);
  }
  const root = process.getuid?.() === 0 && onPath('losetup');
  if (!root) {
    const why = "not root (or no losetup): the guide's block-device lines run on files instead of loop devices";
    if (isCI()) throw new Error(`CI=true and ${why}`);
    process.stderr.write(`spdk-guide: ${why}\n`);
    return { paths: [files[0], files[1]], loop: false, release: () => undefined };
  }
  const devs: string[] = [];
  const release = (): void => {
    for (const d of devs.splice(0)) spawnSync('losetup', ['-d', d], { timeout: 10_000 });
  };
  try {
    for (const f of files) {
      const r = spawnSync('losetup', ['--find', '--show', f], { encoding: 'utf8', timeout: 10_000 });
      if (r.status !== 0) throw new Error(`losetup --find --show ${f}: ${r.stderr}`);
      devs.push(r.stdout.trim());
    }
  } catch (err) {
    release();
    throw err;
  }
  return { paths: [devs[0] as string, devs[1] as string], loop: true, release };
}

describe("SPDK's AIO guide, line by line through aionbd rpc", () => {
  let t: RpcTarget;
  let disks: Disks;
  let env: NodeJS.ProcessEnv;
  const out = new Map<string, RunResult>();

  beforeAll(async () => {
    t = await startTarget({ allowPath: ['.', '/dev'] });
    disks = makeDisks(t.dir);
    // `aionbd` on PATH: the built CLI, with this server's socket for `aionbd rpc`.
    const bin = path.join(t.dir, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(
      path.join(bin, 'aionbd'),
      [
        '#!/bin/sh',
        `if [ "$1" = rpc ]; then shift; exec '${process.execPath}' '${BIN}' rpc -s '${t.rpcSock}' "$@"; fi`,
        `exec '${process.execPath}' '${BIN}' "$@"`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    env = { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}`, DISK1: disks.paths[0], DISK2: disks.paths[1] };
  }, 30_000);

  afterAll(async () => {
    await t?.cleanup();
    disks?.release();
  });

  const json = (line: string): unknown => JSON.parse(out.get(line)?.stdout ?? 'null');

  it('every line succeeds, in order, as typed', async () => {
    for (const line of GUIDE) {
      const r = await run('bash', ['-c', line], { cwd: t.dir, env, timeoutMs: 60_000 });
      expect(r.code, `${line}\n${explain(r)}`).toBe(0);
      out.set(line, r);
    }
  }, 180_000);

  it('made what each line says', () => {
    expect(out.get('aionbd rpc bdev_aio_create aio_test.img aio_test 4096')?.stdout).toBe('aio_test\n');
    expect(json('aionbd rpc bdev_get_bdevs -b aio_test')).toMatchObject([
      { name: 'aio_test', block_size: 4096, num_blocks: 2 ** 31 / 4096, product_name: 'AIO disk' },
    ]);
    // A block device without a block size gets its own (a loop device's is 512), as a file does.
    expect(json('aionbd rpc bdev_get_bdevs -b aio_disk1')).toMatchObject([
      { name: 'aio_disk1', block_size: 512, num_blocks: DISK_SIZE / 512 },
    ]);
    expect(out.get('aionbd rpc bdev_error_create aio_test error_test')?.stdout).toBe('true\n');
    expect(json('aionbd rpc bdev_get_bdevs -b error_test')).toMatchObject([
      { name: 'error_test', block_size: 4096, num_blocks: 2 ** 31 / 4096 },
    ]);
    expect(out.get('aionbd rpc bdev_error_delete EE_aio_test')?.stdout).toBe('true\n');
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n$/;
    expect(out.get('aionbd rpc bdev_lvol_create_lvstore aio_test lvs0')?.stdout).toMatch(uuid);
    const vol1 = out.get('aionbd rpc bdev_lvol_create -l lvs0 -n vol1 -s 1073741824')?.stdout ?? '';
    expect(vol1).toMatch(uuid);
    expect(json('aionbd rpc bdev_get_bdevs -b lvs0/vol1')).toMatchObject([
      { name: vol1.trim(), aliases: ['lvs0/vol1'], block_size: 4096, num_blocks: 2 ** 30 / 4096 },
    ]);
    expect(out.get('aionbd rpc bdev_lvol_create vol2 512 -l lvs0')?.stdout).toMatch(uuid);
    expect(out.get('aionbd rpc bdev_raid_create -n raid0_aio -z 64 -r 0 -b "aio_disk1 aio_disk2"')?.stdout).toBe('true\n');
    expect(json('aionbd rpc bdev_get_bdevs -b raid0_aio')).toMatchObject([
      { name: 'raid0_aio', block_size: 512, num_blocks: (2 * DISK_SIZE) / 512 },
    ]);
    expect(json('aionbd rpc bdev_get_iostat -b aio_test')).toMatchObject({ bdevs: [{ name: 'aio_test' }] });
    if (!disks.loop) process.stderr.write('spdk-guide: aio_disk1 and aio_disk2 were files, not block devices\n');
  });

  it('the lvols have the sizes asked for, whichever form asked', async () => {
    const size = async (name: string): Promise<number> => {
      const [b] = (await t.json('bdev_get_bdevs', '-b', name)) as { block_size: number; num_blocks: number }[];
      return (b?.block_size ?? 0) * (b?.num_blocks ?? 0);
    };
    expect(await size('lvs0/vol1')).toBe(1024 * MiB);
    expect(await size('lvs0/vol2')).toBe(512 * MiB);
    expect(await size('lvs0/vol3')).toBe(256 * MiB);
  });

  it('aionbd rpc METHOD --help says which unit each form of the size takes', async () => {
    const r = await run('bash', ['-c', 'aionbd rpc bdev_lvol_create --help'], { cwd: t.dir, env, timeoutMs: 30_000 });
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout).toMatch(/^ {2}MIB .*a bare number is MiB/m);
    expect(r.stdout).toMatch(/^ {2}-s, --size BYTES .*a bare number is bytes/m);
  });

  it.skipIf(!haveFio)(
    "the guide's fio job, over NBD, on the lvol and on the raid",
    async () => {
      await t.ok('nbd_export_add', 'lvs0/vol1', '-n', 'vol1');
      await t.ok('nbd_export_add', 'raid0_aio');
      for (const name of ['vol1', 'raid0_aio']) {
        // The guide's options; --runtime is 60 there.
        const r = await run(
          'fio',
          [
            '--name=guide',
            '--ioengine=nbd',
            `--uri=${t.uri(name)}`,
            '--rw=randrw',
            '--rwmixread=70',
            '--bs=4k',
            '--iodepth=32',
            '--randrepeat=0',
            '--direct=1',
            '--time_based',
            '--runtime=2',
            '--output-format=json',
          ],
          { cwd: t.dir, timeoutMs: 60_000 },
        );
        expect(r.code, explain(r)).toBe(0);
        const job = (
          JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as {
            jobs: { error: number; read: { io_bytes: number }; write: { io_bytes: number } }[];
          }
        ).jobs[0];
        expect(job?.error).toBe(0);
        // About 70% reads by bytes.
        const reads = job?.read.io_bytes ?? 0,
          writes = job?.write.io_bytes ?? 0;
        expect(reads / (reads + writes)).toBeGreaterThan(0.6);
        expect(reads / (reads + writes)).toBeLessThan(0.8);
      }
    },
    90_000,
  );
});
