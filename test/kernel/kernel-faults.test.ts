// The kernel over aionbd when things go wrong, and with other file systems: xfs, fio verify in
// the guest, a kill -9 of the server after sync, injected write errors under a mounted ext4,
// a delay longer than the attach timeout, and hot-remove of a mounted export.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUEST_FORWARD_ADDRESS, bootVm, type Vm } from '../../src/testing/index.js';
import { run } from '../helpers/run.js';
import { BIN, REPO_ROOT, requireBuilt, startServer, stopAllServers, type TestServer } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';

const PORT = 10809;
const _MiB = 1 << 20;
const have = tool(
  'qemu-system-x86_64',
  'socat',
  'nbd-client',
  'mkfs.ext4',
  'mkfs.xfs',
  'xfs_repair',
  'e2fsck',
  'fio',
  'busybox',
  'dpkg-deb',
  'depmod',
);

describe.skipIf(!have)('kernel I/O and failures (QEMU guest)', () => {
  let dir: string;
  let vm: Vm;
  let sock: string;
  let rpcSock: string;
  let srv: TestServer;

  const serve = async (): Promise<TestServer> => {
    srv = await startServer({
      rawArgs: [
        '--listen',
        `unix:${sock}`,
        '--rpc',
        rpcSock,
        '--allow-path',
        dir,
        '--aio',
        `${path.join(dir, 'd0.img')},name=d0,size=512M`,
        '--aio',
        `${path.join(dir, 'e0.img')},name=e0,size=64M`,
        '--log-level',
        'warn',
      ],
      exports: 2,
    });
    return srv;
  };
  async function rpc(...args: string[]): Promise<string> {
    const r = await run(process.execPath, [BIN, 'rpc', '-s', rpcSock, ...args], { timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(`aionbd rpc ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }
  async function sh(cmd: string, timeoutMs = 120_000): Promise<string> {
    const r = await vm.sh(cmd, { timeoutMs });
    if (r.code !== 0) throw new Error(`guest command failed (${r.code}): ${cmd}\n${r.output}\n--- console ---\n${vm.consoleTail(15)}`);
    return r.output;
  }
  const attach = (dev: string, name: string, extra = ''): Promise<string> =>
    sh(`nbd-client ${GUEST_FORWARD_ADDRESS} ${PORT} ${dev} -N ${name} -b 512 ${extra}`);

  beforeAll(async () => {
    requireBuilt();
    dir = tmpDir();
    sock = path.join(dir, 'nbd.sock');
    rpcSock = path.join(dir, 'rpc.sock');
    // The guest reaches the server only when nbd-client connects: both start at once.
    const booting = bootVm({ forwards: [{ guestPort: PORT, hostSocket: sock }], shareDir: REPO_ROOT });
    try {
      await serve();
    } finally {
      vm = await booting;
    }
  }, 240_000);
  afterAll(async () => {
    await vm?.close();
    await stopAllServers();
    rmrf(dir);
  }, 60_000);

  it('xfs: mkfs, mount, write, xfs_repair -n clean, remount, checksum equal', async () => {
    await attach('/dev/nbd0', 'd0');
    await sh('mkfs.xfs -q -f /dev/nbd0 && mount /dev/nbd0 /mnt && head -c 16777216 /dev/urandom > /mnt/f && sync');
    const sum = (await sh('sha256sum /mnt/f | cut -d" " -f1')).trim();
    await sh('umount /mnt && xfs_repair -n /dev/nbd0 && mount /dev/nbd0 /mnt && echo 3 > /proc/sys/vm/drop_caches');
    expect((await sh('sha256sum /mnt/f | cut -d" " -f1')).trim()).toBe(sum);
    await sh('umount /mnt && nbd-client -d /dev/nbd0');
  }, 180_000);

  it('fio in the guest on /dev/nbd0: libaio, direct, iodepth 32, verify=crc32c', async () => {
    await attach('/dev/nbd0', 'd0');
    const out = await sh(
      'fio --name=v --filename=/dev/nbd0 --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=32 --size=32M --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=terse --terse-version=3',
      180_000,
    );
    expect(out.split(';')[4]).toBe('0'); // the terse error field
    await sh('nbd-client -d /dev/nbd0');
  }, 240_000);

  it('kill -9 after sync loses nothing that was synced', async () => {
    // A request timeout, so that I/O to the dead server fails instead of waiting forever (the
    // kernel's documented behaviour without one).
    await attach('/dev/nbd0', 'd0', '-t 5');
    await sh('mkfs.ext4 -q -F /dev/nbd0 && mount /dev/nbd0 /mnt && head -c 16777216 /dev/urandom > /mnt/synced && sync');
    const sum = (await sh('sha256sum /mnt/synced | cut -d" " -f1')).trim();
    srv.proc.kill('SIGKILL');
    await srv.exited;
    // The dead server's device goes away without waiting for it; then a new process serves the image.
    await sh('nbd-client -d /dev/nbd0; umount -l /mnt; true', 90_000);
    await serve();
    await attach('/dev/nbd0', 'd0');
    await sh('mount /dev/nbd0 /mnt');
    expect((await sh('sha256sum /mnt/synced | cut -d" " -f1')).trim()).toBe(sum);
    await sh('umount /mnt && e2fsck -fn /dev/nbd0 && nbd-client -d /dev/nbd0');
  }, 240_000);

  it('injected write errors under a mounted ext4: the kernel sees I/O errors and remounts read-only', async () => {
    await rpc('nbd_export_remove', 'e0');
    await rpc('bdev_error_create', 'e0');
    await rpc('nbd_export_add', 'EE_e0', '-n', 'faulty');
    await attach('/dev/nbd1', 'faulty');
    await sh('mkfs.ext4 -q -F /dev/nbd1 && mount -o errors=remount-ro /dev/nbd1 /mnt && echo ok > /mnt/before && sync');
    await rpc('bdev_error_inject_error', 'EE_e0', 'write', 'failure', '-n', '100000');
    const r = await vm.sh('head -c 4194304 /dev/urandom > /mnt/after; sync; sleep 1; touch /mnt/later', { timeoutMs: 120_000 });
    expect(r.code).not.toBe(0);
    // 6.1 shuts ext4 down instead of flipping the mount to ro in /proc/mounts: it logs the
    // remount and every later write gets EROFS.
    expect(r.output).toContain('Read-only file system');
    const log = await sh('dmesg');
    expect(log).toContain('I/O error, dev nbd1');
    expect(log).toContain('EXT4-fs (nbd1): Remounting filesystem read-only');
    await sh('umount /mnt; nbd-client -d /dev/nbd1; true');
    await rpc('bdev_error_inject_error', 'EE_e0', 'clear', 'failure');
  }, 180_000);

  it('hot-remove of a mounted export: I/O fails with EIO, umount completes, the server stays up', async () => {
    // With a request timeout: a request the kernel sent just before the server closed the
    // connection would otherwise wait forever (the kernel's behaviour without -t).
    await attach('/dev/nbd1', 'faulty', '-t 5');
    await sh('mount /dev/nbd1 /mnt && cat /mnt/before');
    await rpc('bdev_error_delete', 'EE_e0');
    const r = await vm.sh('dd if=/dev/nbd1 of=/dev/null bs=4096 count=16 skip=1000 iflag=direct', { timeoutMs: 60_000 });
    expect(r.code).not.toBe(0);
    await sh('umount /mnt; nbd-client -d /dev/nbd1; true', 60_000);
    expect(await rpc('bdev_get_bdevs', '-b', 'd0')).toContain('"d0"');
  }, 180_000);

  it('a delay longer than the attach timeout: requests time out and fail, no hang', async () => {
    await rpc('bdev_malloc_create', '64', '512', '-b', 'm0');
    await rpc('bdev_delay_create', '-b', 'm0', '-d', 'slow', '-r', '4000000', '-t', '4000000', '-w', '4000000', '-n', '4000000');
    await rpc('nbd_export_add', 'slow');
    await attach('/dev/nbd2', 'slow', '-t 1');
    const t0 = Date.now();
    const r = await vm.sh('dd if=/dev/nbd2 of=/dev/null bs=4096 count=1 skip=100 iflag=direct', { timeoutMs: 90_000 });
    expect(r.code).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(60_000);
    await sh('nbd-client -d /dev/nbd2; true', 60_000);
    expect(fs.existsSync(sock)).toBe(true);
  }, 180_000);
});
