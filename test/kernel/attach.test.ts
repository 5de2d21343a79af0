// aionbd's own kernel attach (netlink, and the ioctl fallback), without nbd-client, in the
// QEMU guest: node runs there (the package unpacked into the guest's tmpfs, see
// helpers/guest.ts), so the kernel attaching is the guest's. One VM and one `aionbd serve`
// in it for the whole file; JSON-RPC goes over socat, which starts in no time, while the CLI
// is started where the CLI itself is under test.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootVm, GUEST_SHARE_DIR, type Vm } from '../../src/testing/index.js';
import { GUEST_AIONBD as A, GUEST_RUNTIME, packRuntime } from '../helpers/guest.js';
import { requireBuilt } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';

const have = tool(
  'qemu-system-x86_64',
  'socat',
  'mkfs.ext4',
  'e2fsck',
  'mkfs.xfs',
  'xfs_repair',
  'fio',
  'busybox',
  'dpkg-deb',
  'depmod',
  'setpriv',
);
const RPC = '/tmp/r.sock';
const SERVE = 'bin/aionbd.js serve';

interface RpcReply {
  result?: unknown;
  error?: { code: number; message: string; data?: { code?: string } };
}

describe.skipIf(!have)('aionbd attach/detach and nbd_*_disk against the guest kernel', () => {
  let vm: Vm;
  let share: string;

  async function sh(cmd: string, timeoutMs = 120_000): Promise<string> {
    const r = await vm.sh(cmd, { timeoutMs });
    if (r.code !== 0) throw new Error(`guest command failed (${r.code}): ${cmd}\n${r.output}\n--- console ---\n${vm.consoleTail(15)}`);
    return r.output;
  }
  async function rpc(method: string, params: Record<string, unknown> = {}): Promise<RpcReply> {
    const req = JSON.stringify({ jsonrpc: '2.0', id: 1, method, params });
    if (req.includes("'")) throw new Error('no quotes in RPC params here');
    return JSON.parse(await sh(`printf '%s\\n' '${req}' | socat -t 120 - UNIX-CONNECT:${RPC}`)) as RpcReply;
  }
  async function call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const r = await rpc(method, params);
    if (r.error !== undefined) throw new Error(`${method}: ${r.error.message}`);
    return r.result;
  }
  async function device(params: Record<string, unknown>): Promise<string> {
    const dev = await call('nbd_start_disk', params);
    expect(dev).toMatch(/^\/dev\/nbd\d+$/);
    return dev as string;
  }
  /** Waits (bounded) until `cond` exits 0 in the guest. */
  const until = (cond: string, seconds = 20): Promise<string> =>
    sh(
      `for i in $(seq ${seconds * 5}); do ${cond} && exit 0; sleep 0.2; done; echo "gave up waiting for: ${cond.replace(/"/g, '')}"; exit 1`,
      (seconds + 30) * 1000,
    );
  const started = (dev: string): Promise<boolean> => vm.sh(`test -e /sys/block/${path.basename(dev)}/pid`).then((r) => r.code === 0);
  const serve = (): Promise<string> =>
    sh(
      `(cd /tmp && ${A} serve --aio /tmp/d0.img,name=d0,size=128M --aio /tmp/e0.img,name=e0,size=64M --listen unix:/tmp/n.sock ` +
        `--rpc ${RPC} --allow-path /tmp --log-level info > /tmp/serve.out 2> /tmp/serve.err &); ` +
        'for i in $(seq 200); do [ "$(grep -c exporting /tmp/serve.out 2>/dev/null)" = 2 ] && exit 0; sleep 0.2; done; cat /tmp/serve.err; exit 1',
      90_000,
    );

  beforeAll(async () => {
    requireBuilt();
    share = tmpDir();
    const unpack = packRuntime(share);
    // Two CPUs: blk-mq gives an nbd device one hardware queue per connection only up to the
    // CPU count, and the first test checks that mapping.
    vm = await bootVm({ shareDir: share, cpus: 2 });
    console.info(`guest booted in ${vm.bootMs} ms under ${vm.accel}`);
    await sh(unpack);
    await serve();
  }, 240_000);
  afterAll(async () => {
    await vm?.close();
    rmrf(share);
  }, 60_000);

  it('aionbd attach --aio serves its own bdev over 4 connections: ext4, fio verify; aionbd detach ends it', async () => {
    const dev = (
      await sh(
        `(cd /tmp && ${A} attach --aio /tmp/own.img,name=own,size=128M --connections 4 --log-level info > /tmp/own.out 2> /tmp/own.err &); ` +
          'for i in $(seq 200); do [ -s /tmp/own.out ] && break; sleep 0.2; done; cat /tmp/own.out',
        90_000,
      )
    ).trim();
    expect(dev).toMatch(/^\/dev\/nbd\d+$/);
    const nbd = path.basename(dev);
    expect(await sh('cat /tmp/own.err')).toMatch(/"connections":4,.*"msg":"attached to the kernel"/);
    // One hardware queue per connection, as far as the guest has CPUs.
    const queues = Number((await sh(`ls /sys/block/${nbd}/mq | wc -l`)).trim());
    expect(queues).toBe(Math.min(4, Number((await sh('nproc')).trim())));
    expect((await sh(`cat /sys/block/${nbd}/size`)).trim()).toBe(String((128 << 20) / 512));

    await sh(`mkfs.ext4 -q -F ${dev} && mount ${dev} /mnt && head -c 4194304 /dev/urandom > /mnt/f && sync`);
    const sum = await sh('sha256sum < /mnt/f');
    await sh(`umount /mnt && e2fsck -fn ${dev} && mount ${dev} /mnt && echo 3 > /proc/sys/vm/drop_caches`);
    expect(await sh('sha256sum < /mnt/f')).toBe(sum);
    await sh('umount /mnt');
    const fio = await sh(
      `fio --name=v --filename=${dev} --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=32 --size=8M ` +
        '--verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=terse --terse-version=3',
      180_000,
    );
    expect(fio.trim().split('\n').pop()?.split(';')[4]).toBe('0'); // the terse error field

    await sh(`${A} detach ${dev}`);
    await until('! pgrep -f own.img > /dev/null');
    expect(await started(dev)).toBe(false);
  }, 300_000);

  it('nbd_start_disk / nbd_get_disks / nbd_stop_disk: SPDK names and shapes, errors, the ioctl fallback', async () => {
    const dev = (await sh(`${A} attach d0 -s ${RPC} --timeout 10`)).trim();
    expect(dev).toMatch(/^\/dev\/nbd\d+$/);
    expect(await call('nbd_get_disks')).toEqual([{ nbd_device: dev, bdev_name: 'd0' }]);
    expect(await device({ bdev_name: 'e0', nbd_device: '/dev/nbd9' })).toBe('/dev/nbd9');
    expect(await call('nbd_get_disks', { nbd_device: '/dev/nbd9' })).toEqual([{ nbd_device: '/dev/nbd9', bdev_name: 'e0' }]);
    expect(JSON.stringify(await call('save_config'))).toContain(
      `{"method":"nbd_start_disk","params":{"nbd_device":"${dev}","bdev_name":"d0"}}`,
    );

    const busy = await rpc('nbd_start_disk', { bdev_name: 'e0', nbd_device: dev });
    expect(busy.error).toMatchObject({ code: -16, data: { code: 'AIONBD_NBD_DEVICE_BUSY' } });
    expect((await rpc('nbd_start_disk', { bdev_name: 'e0', nbd_device: '/dev/sda' })).error).toMatchObject({ code: -22 });
    expect((await rpc('nbd_stop_disk', { nbd_device: '/dev/nbd15' })).error).toMatchObject({
      code: -19,
      data: { code: 'AIONBD_NBD_DISK_NOT_FOUND' },
    });
    expect((await rpc('nbd_start_disk', { bdev_name: 'nope' })).error).toMatchObject({ code: -19 });
    // An attached bdev cannot be claimed, as an exported one cannot.
    await call('bdev_malloc_create', { name: 'm1', num_blocks: 8192, block_size: 512 });
    const m1 = await device({ bdev_name: 'm1' });
    expect((await rpc('bdev_error_create', { base_name: 'm1' })).error?.message).toContain(`attached to the kernel as ${m1}`);

    await call('nbd_stop_disk', { nbd_device: m1 });
    await call('nbd_stop_disk', { nbd_device: '/dev/nbd9' });
    expect(await started('/dev/nbd9')).toBe(false);
    // The ioctl interface, as on kernels without the netlink family.
    const io = await device({ bdev_name: 'm1', netlink: false });
    expect(await sh('grep -c \'"mode":"ioctl"\' /tmp/serve.err')).toMatch(/^1/);
    await sh(
      `head -c 1048576 /dev/urandom > /tmp/x && dd if=/tmp/x of=${io} bs=64k oflag=direct status=none && ` +
        `dd if=${io} of=/tmp/y bs=64k count=16 iflag=direct status=none && cmp /tmp/x /tmp/y`,
    );
    await call('nbd_stop_disk', { nbd_device: io });
    expect(await started(io)).toBe(false);
    await call('nbd_stop_disk', { nbd_device: dev });
    expect(await call('nbd_get_disks')).toEqual([]);
    expect(await started(dev)).toBe(false);

    const r = await vm.sh(`setpriv --reuid=65534 --regid=65534 --clear-groups ${A} attach --aio /tmp/nr.img,size=16M`, {
      timeoutMs: 60_000,
    });
    expect(r.code).toBe(1);
    expect(r.output).toContain('aionbd: attaching an nbd device needs root (CAP_SYS_ADMIN)');
  }, 300_000);

  it('kill -9 of the server: synced data is there after aionbd detach, a restart and a new attach', async () => {
    const dev = await device({ bdev_name: 'd0' });
    await sh(`mkfs.ext4 -q -F ${dev} && mount ${dev} /mnt && head -c 4194304 /dev/urandom > /mnt/synced && sync`);
    const sum = await sh('sha256sum < /mnt/synced');
    await sh(`pkill -KILL -f "${SERVE}"; sleep 0.5`);
    // No server: the device's I/O fails at once (no dead-connection timeout), it does not hang.
    const r = await vm.sh(`dd if=${dev} of=/dev/null bs=4k count=1 skip=4321 iflag=direct`, { timeoutMs: 60_000 });
    expect(r.code).not.toBe(0);
    await sh(`${A} detach ${dev} && umount -l /mnt`);
    expect(await started(dev)).toBe(false);
    await serve();
    const again = await device({ bdev_name: 'd0' });
    await sh(`mount ${again} /mnt`);
    expect(await sh('sha256sum < /mnt/synced')).toBe(sum);
    await sh(`umount /mnt && e2fsck -fn ${again}`);
    await call('nbd_stop_disk', { nbd_device: again });
  }, 300_000);

  it('injected write errors under ext4 (errors=remount-ro): I/O errors logged, writes refused as read-only', async () => {
    await call('nbd_export_remove', { name: 'e0' });
    await call('bdev_error_create', { base_name: 'e0' });
    const dev = await device({ bdev_name: 'EE_e0' });
    const nbd = path.basename(dev);
    await sh(`mkfs.ext4 -q -F ${dev} && mount -o errors=remount-ro ${dev} /mnt && echo before > /mnt/before && sync`);
    await call('bdev_error_inject_error', { name: 'EE_e0', io_type: 'write', error_type: 'failure', num: 1_000_000 });
    const r = await vm.sh('head -c 4194304 /dev/urandom > /mnt/after; sync; touch /mnt/later', { timeoutMs: 120_000 });
    expect(r.code).not.toBe(0);
    // 6.1 (as stable kernels since 2023) no longer flips the mount to ro in /proc/mounts: it
    // shuts the file system down, logs the remount, and every write gets EROFS.
    expect(r.output).toContain('Read-only file system');
    const log = await sh('dmesg');
    expect(log).toContain(`I/O error, dev ${nbd}`);
    expect(log).toMatch(new RegExp(`EXT4-fs \\(${nbd}\\): Remounting filesystem read-only`));
    await sh('umount /mnt');
    await call('nbd_stop_disk', { nbd_device: dev });
  }, 180_000);

  it('a delay longer than the attach timeout: the request fails with EIO in time, the device is torn down', async () => {
    await call('bdev_malloc_create', { name: 'm0', num_blocks: 32768, block_size: 512 });
    await call('bdev_delay_create', {
      base_bdev_name: 'm0',
      name: 'slow',
      avg_read_latency: 3_000_000,
      p99_read_latency: 3_000_000,
      avg_write_latency: 3_000_000,
      p99_write_latency: 3_000_000,
    });
    const dev = await device({ bdev_name: 'slow', timeout: 1 });
    const t0 = Date.now();
    const r = await vm.sh(`dd if=${dev} of=/dev/null bs=4k count=1 skip=100 iflag=direct`, { timeoutMs: 60_000 });
    expect(r.code).not.toBe(0);
    expect(r.output).toContain('Input/output error');
    expect(Date.now() - t0).toBeLessThan(20_000);
    // The connection the kernel gave up on ends once its slow request is answered; then the
    // device is disconnected rather than left with a dead socket.
    await until(`! test -e /sys/block/${path.basename(dev)}/pid`, 30);
    expect(await call('nbd_get_disks')).toEqual([]);
  }, 180_000);

  it('with a dead-connection timeout, a timed-out connection is replaced (RECONFIGURE) and the read completes', async () => {
    const dev = await device({ bdev_name: 'slow', timeout: 1, dead_conn_timeout: 60 });
    await sh(
      `(dd if=${dev} of=/tmp/rc.out bs=4k count=1 skip=200 iflag=direct > /tmp/rc.log 2>&1; echo $? > /tmp/rc.code) > /dev/null 2>&1 &`,
    );
    await until('grep -q \'"msg":"reconnected"\' /tmp/serve.err', 30);
    // The backend becomes fast: the request, resent on the new connection, completes.
    for (const t of ['avg_read', 'p99_read'])
      await call('bdev_delay_update_latency', { delay_bdev_name: 'slow', latency_type: t, latency_us: 0 });
    await until('test -s /tmp/rc.code', 60);
    expect((await sh('cat /tmp/rc.code /tmp/rc.log')).split('\n')[0]).toBe('0');
    expect(await sh('dmesg')).toContain(`${path.basename(dev)}: reconnected socket`);
    await call('nbd_stop_disk', { nbd_device: dev });
  }, 180_000);

  it('hot-remove of a mounted bdev: I/O fails with EIO, umount completes, the server stays up', async () => {
    await call('bdev_malloc_create', { name: 'm2', num_blocks: 65536, block_size: 512 });
    const dev = await device({ bdev_name: 'm2' });
    await sh(
      `mkfs.ext4 -q -F ${dev} && mount ${dev} /mnt && head -c 1048576 /dev/urandom > /mnt/f && sync && echo 3 > /proc/sys/vm/drop_caches`,
    );
    await call('bdev_malloc_delete', { name: 'm2' });
    const r = await vm.sh('cat /mnt/f > /dev/null', { timeoutMs: 60_000 });
    expect(r.code).not.toBe(0);
    expect(r.output).toContain('Input/output error');
    await sh('umount /mnt', 60_000);
    expect(await started(dev)).toBe(false);
    expect(await call('nbd_get_disks')).toEqual([]);
    expect(await call('bdev_get_bdevs', { name: 'd0' })).toHaveLength(1);
  }, 180_000);

  it('resize reaches attached devices: blockdev --getsize64 follows, resize2fs grows a mounted ext4; shrinking needs force', async () => {
    // Few guest commands, each doing much: a command costs about a second under TCG.
    const MiB = 1 << 20;
    await sh('truncate -s 64M /tmp/g.img /tmp/l.img');
    // An AIO bdev over a file that grows, attached over netlink with ext4 mounted on it.
    await call('bdev_aio_create', { filename: '/tmp/g.img', name: 'g', block_size: 4096 });
    const dev = await device({ bdev_name: 'g' });
    const [sum, before] = (
      await sh(
        `mkfs.ext4 -q -F -E nodiscard ${dev} && mount ${dev} /mnt && head -c 1048576 /dev/urandom > /mnt/f && sync && ` +
          'sha256sum < /mnt/f && stat -f -c %b /mnt && truncate -s 192M /tmp/g.img',
      )
    )
      .trim()
      .split('\n');
    await call('bdev_aio_rescan', { name: 'g' });
    const [size, after, again] = (
      await sh(
        `blockdev --getsize64 ${dev} && resize2fs ${dev} > /dev/null 2>&1 && stat -f -c %b /mnt && ` +
          'echo 3 > /proc/sys/vm/drop_caches && sha256sum < /mnt/f && umount /mnt',
      )
    )
      .trim()
      .split('\n');
    expect(Number(size)).toBe(192 * MiB);
    expect(Number(after)).toBeGreaterThan(Number(before) * 2.5);
    expect(again).toBe(sum);
    // An lvol attached through the ioctls: grown, then shrunk only when forced.
    await call('bdev_aio_create', { filename: '/tmp/l.img', name: 'l' });
    await call('bdev_lvol_create_lvstore', { bdev_name: 'l', lvs_name: 'lvk' });
    await call('bdev_lvol_create', { lvs_name: 'lvk', lvol_name: 'v', size_in_mib: 16, thin_provision: true });
    const lv = await device({ bdev_name: 'lvk/v', netlink: false });
    await call('bdev_lvol_resize', { name: 'lvk/v', size_in_mib: 40 });
    expect(
      (await sh(`blockdev --getsize64 ${lv} && dd if=/dev/urandom of=${lv} bs=1M seek=39 count=1 oflag=direct status=none`)).trim(),
    ).toBe(String(40 * MiB));
    const refused = await rpc('bdev_lvol_resize', { name: 'lvk/v', size_in_mib: 8 });
    expect(refused.error).toMatchObject({ code: -16, data: { code: 'AIONBD_BDEV_IN_USE' } });
    expect(refused.error?.message).toContain('connected clients were told it has 41943040 bytes');
    await call('bdev_lvol_resize', { name: 'lvk/v', size_in_mib: 8, force: true });
    expect((await sh(`blockdev --getsize64 ${lv}`)).trim()).toBe(String(8 * MiB));
    for (const d of [dev, lv]) await call('nbd_stop_disk', { nbd_device: d });
  }, 180_000);

  it('withKernel on a machine with /dev/nbd0, as root: attaches here with aionbd attach (xfs), then tears down', async () => {
    fs.writeFileSync(
      path.join(share, 'host-rig.mjs'),
      [
        `import { withKernel } from '${GUEST_RUNTIME}/dist/testing/index.js';`,
        "const r = await withKernel({ exports: [{ name: 'x0', size: '512M' }] }, async (k) => {",
        '  const dev = k.devices.x0;',
        '  await k.run(`mkfs.xfs -q -f -K ${dev} && mount ${dev} /mnt && head -c 8388608 /dev/urandom > /mnt/f && sync`);',
        "  const sum = await k.run('sha256sum < /mnt/f');",
        '  await k.run(`umount /mnt && xfs_repair -n ${dev} && mount ${dev} /mnt && echo 3 > /proc/sys/vm/drop_caches`);',
        "  const again = await k.run('sha256sum < /mnt/f');",
        "  await k.run('umount /mnt');",
        '  return { where: k.where, dev, same: sum === again };',
        '});',
        'console.log(JSON.stringify(r));',
      ].join('\n'),
    );
    const out = await sh(`cd /tmp && ${process.execPath} ${GUEST_SHARE_DIR}/host-rig.mjs`, 180_000);
    const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { where: string; dev: string; same: boolean };
    expect(r).toMatchObject({ where: 'host', same: true });
    expect(await started(r.dev)).toBe(false);
  }, 240_000);

  it('SIGTERM of the server detaches its devices: a mounted file system gets I/O errors, umount completes', async () => {
    const dev = await device({ bdev_name: 'd0' });
    await sh(`mount ${dev} /mnt && echo 3 > /proc/sys/vm/drop_caches`);
    await sh(`pkill -TERM -f "${SERVE}"`);
    await until(`! pgrep -f "${SERVE}" > /dev/null`, 30);
    expect(await sh('grep -c \'"reason":"the server is shutting down"\' /tmp/serve.err')).toMatch(/^1/);
    const r = await vm.sh('cat /mnt/synced > /dev/null', { timeoutMs: 60_000 });
    expect(r.code).not.toBe(0);
    await sh('umount /mnt', 60_000);
    expect(await started(dev)).toBe(false);
  }, 120_000);

  it('no free device on the ioctl path: one line naming the way out, exit 1', async () => {
    // Netlink makes a new device when all are taken; the ioctl interface cannot, so it is the
    // path that runs out. The driver is reloaded with a single device for it.
    await sh('rmmod nbd && modprobe nbd nbds_max=1 && test -e /dev/nbd0 && ! test -e /dev/nbd1');
    await sh(`(${A} attach --ioctl --aio /tmp/f0.img,size=16M > /tmp/f0.out 2>&1 &)`);
    await until('grep -q /dev/nbd0 /tmp/f0.out', 60);
    const r = await vm.sh(`${A} attach --ioctl --aio /tmp/f1.img,size=16M`, { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(r.output.trim().split('\n').pop()).toMatch(/^aionbd: no free \/dev\/nbdX: detach one/);
    await sh(`${A} detach /dev/nbd0`);
    await until('! pgrep -f f0.img > /dev/null');
    expect(await started('/dev/nbd0')).toBe(false);
  }, 120_000);
});
