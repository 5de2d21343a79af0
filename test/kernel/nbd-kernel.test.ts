// The Linux kernel's NBD driver against aionbd: Debian's stock kernel under QEMU attaches the
// export with nbd-client through QEMU's restricted user network (guestfwd to our unix socket),
// then mkfs, mount, write, fsck, re-attach after a server restart, multi-conn and fstrim.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUEST_FORWARD_ADDRESS, bootVm, type Vm } from '../../src/testing/index.js';
import { GUEST_AIONBD, packRuntime } from '../helpers/guest.js';
import { requireBuilt, startServer, stopAllServers, type TestServer } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';

const PORT = 10809;
const MiB = 1 << 20;
const have = tool('qemu-system-x86_64', 'socat', 'nbd-client', 'mkfs.ext4', 'e2fsck', 'busybox', 'dpkg-deb', 'depmod', 'fstrim');

describe.skipIf(!have)('kernel NBD driver (QEMU guest)', () => {
  let dir: string;
  let share: string;
  let sock: string;
  let img: string;
  let vm: Vm;
  let srv: TestServer | null = null;

  async function serve(extra: string[] = []): Promise<TestServer> {
    srv = await startServer({
      rawArgs: ['--listen', `unix:${sock}`, '--aio', `${img},name=d0,size=256M`, '--log-level', 'debug', ...extra],
    });
    return srv;
  }

  /** Runs a guest command and fails with its output when the exit code is not 0. */
  async function sh(cmd: string, timeoutMs = 120_000): Promise<string> {
    const r = await vm.sh(cmd, { timeoutMs });
    if (r.code !== 0) throw new Error(`guest command failed (${r.code}): ${cmd}\n${r.output}\n--- console ---\n${vm.consoleTail(20)}`);
    return r.output;
  }

  const attach = (dev: string, extra = ''): Promise<string> =>
    sh(
      `nbd-client ${GUEST_FORWARD_ADDRESS} ${PORT} ${dev} -N d0 -b 512 ${extra} && sleep 0.3 && cat /sys/block/${path.basename(dev)}/size`,
    );

  beforeAll(async () => {
    requireBuilt();
    dir = tmpDir();
    sock = path.join(dir, 'nbd.sock');
    img = path.join(dir, 'd0.img');
    share = path.join(dir, 'share');
    fs.mkdirSync(share);
    // Two CPUs, so that the -C 4 device has more than one hardware queue to spread requests over.
    // The guest reaches the server only when nbd-client connects: both start at once.
    const booting = bootVm({ forwards: [{ guestPort: PORT, hostSocket: sock }], shareDir: share, cpus: 2 });
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

  it('attaches with nbd-client, mkfs.ext4, mounts, writes 16 MiB, fsck clean; the data survives a server restart', async () => {
    // 256 MiB in 512-byte sectors.
    expect((await attach('/dev/nbd0')).trim().split('\n').pop()).toBe(String((256 * MiB) / 512));
    await sh('mkfs.ext4 -q -F /dev/nbd0 && mount /dev/nbd0 /mnt');
    const sum = (await sh('head -c 16777216 /dev/urandom > /mnt/f && sync && sha256sum /mnt/f | cut -d" " -f1')).trim();
    expect(sum).toMatch(/^[0-9a-f]{64}$/);
    await sh('umount /mnt && e2fsck -fn /dev/nbd0 && nbd-client -d /dev/nbd0');

    // A new server process on the same image: the file system and the file are intact.
    const st = await (srv as TestServer).stop('SIGTERM');
    expect(st.code).toBe(0);
    await serve();
    await attach('/dev/nbd0');
    await sh('mount /dev/nbd0 /mnt');
    expect((await sh('sha256sum /mnt/f | cut -d" " -f1')).trim()).toBe(sum);
    await sh('umount /mnt && e2fsck -fn /dev/nbd0 && nbd-client -d /dev/nbd0');
  }, 300_000);

  it('attaches with 4 connections (nbd-client -C 4) and moves data over all of them', async () => {
    const before = ((srv as TestServer).stderr.match(/"msg":"transmission"/g) ?? []).length;
    await attach('/dev/nbd1', '-C 4');
    const after = ((srv as TestServer).stderr.match(/"msg":"transmission"/g) ?? []).length;
    expect(after - before).toBe(4);
    const out = await sh(
      [
        'head -c 8388608 /dev/urandom > /tmp/x',
        'dd if=/tmp/x of=/dev/nbd1 bs=1M seek=100 oflag=direct status=none',
        'echo 3 > /proc/sys/vm/drop_caches',
        'dd if=/dev/nbd1 of=/tmp/y bs=1M skip=100 count=8 iflag=direct status=none',
        'cmp /tmp/x /tmp/y && echo same',
      ].join(' && '),
    );
    expect(out).toContain('same');
    await sh('nbd-client -d /dev/nbd1');
  }, 180_000);

  it('fstrim on the mounted file system punches holes in the image', async () => {
    await attach('/dev/nbd0');
    await sh('mount /dev/nbd0 /mnt && head -c 33554432 /dev/urandom > /mnt/big && sync');
    const full = fs.statSync(img).blocks * 512;
    await sh('rm /mnt/big && sync && fstrim -v /mnt');
    const trimmed = fs.statSync(img).blocks * 512;
    expect(full - trimmed).toBeGreaterThan(24 * MiB);
    await sh('umount /mnt && e2fsck -fn /dev/nbd0 && nbd-client -d /dev/nbd0');
  }, 180_000);

  it('serves a tmpfs image with buffered I/O where the guest kernel refuses O_DIRECT', async () => {
    // The package unpacked into the guest's tmpfs (helpers/guest.ts): node reading it from the
    // share, uncached 9p, takes most of a minute to start under TCG.
    const unpack = packRuntime(share);
    const out = await sh(
      [
        unpack,
        `(${GUEST_AIONBD} serve --aio /tmp/t.img,name=t,size=64M --listen unix:/tmp/a.sock > /tmp/srv.out 2> /tmp/srv.err &)`,
        'for i in $(seq 1 300); do grep -q exporting /tmp/srv.out 2>/dev/null && break; sleep 0.2; done',
        'nbdinfo --size "nbd+unix:///t?socket=/tmp/a.sock"',
        'grep -c "refuses O_DIRECT" /tmp/srv.err',
        'pkill -TERM -f "aionbd.js serve --aio /tmp/t.img"',
        'for i in $(seq 1 100); do pgrep -f "aionbd.js serve" > /dev/null || break; sleep 0.1; done',
        'pgrep -f "aionbd.js serve" || echo stopped',
      ].join(' && '),
      150_000,
    );
    expect(out).toContain(String(64 * MiB));
    expect(out).toMatch(/^1$/m);
    expect(out).toContain('stopped');
  }, 180_000);
});
