// An lvol (thin, on an lvstore over an AIO bdev), built over JSON-RPC with `aionbd rpc`, exported,
// attached by the kernel in the QEMU guest, formatted and mounted; its lvstore comes back after
// a server restart with the file system intact.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUEST_FORWARD_ADDRESS, bootVm, type Vm } from '../../src/testing/index.js';
import { run } from '../helpers/run.js';
import { BIN, REPO_ROOT, requireBuilt, startServer, stopAllServers, type TestServer } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';

const PORT = 10809;
const have = tool('qemu-system-x86_64', 'socat', 'nbd-client', 'mkfs.ext4', 'e2fsck', 'busybox', 'dpkg-deb', 'depmod');

describe.skipIf(!have)('lvol under the kernel (QEMU guest)', () => {
  let dir: string;
  let vm: Vm;
  let sock: string;
  let rpcSock: string;

  /** First start: the base as an AIO bdev from the command line; later: everything from save_config. */
  async function serve(start: string[], exports: number): Promise<TestServer> {
    return startServer({
      rawArgs: ['--listen', `unix:${sock}`, '--rpc', rpcSock, '--allow-path', dir, ...start, '--log-level', 'warn'],
      exports,
    });
  }
  async function rpc(...args: string[]): Promise<string> {
    const r = await run(process.execPath, [BIN, 'rpc', '-s', rpcSock, ...args], { timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(`aionbd rpc ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }
  async function sh(cmd: string): Promise<string> {
    const r = await vm.sh(cmd, { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`guest command failed (${r.code}): ${cmd}\n${r.output}`);
    return r.output;
  }

  beforeAll(async () => {
    requireBuilt();
    dir = tmpDir();
    sock = path.join(dir, 'nbd.sock');
    rpcSock = path.join(dir, 'rpc.sock');
    vm = await bootVm({ forwards: [{ guestPort: PORT, hostSocket: sock }], shareDir: REPO_ROOT });
  }, 240_000);
  afterAll(async () => {
    await vm?.close();
    await stopAllServers();
    rmrf(dir);
  }, 60_000);

  it('lvstore + thin lvol over aio: exported, mkfs.ext4, mounted, data back after a restart', async () => {
    const fs = await import('node:fs');
    const img = path.join(dir, 'base.img');
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 256 << 20);
    let srv = await serve(['--aio', `${img},name=aio0`], 1);
    // Exported bdevs cannot be claimed (a claim is exclusive write access): unexport the base first.
    await rpc('nbd_export_remove', 'aio0');
    await rpc('bdev_lvol_create_lvstore', 'aio0', 'lvs0');
    await rpc('bdev_lvol_create', '-l', 'lvs0', '-t', 'vol0', '128');
    await rpc('nbd_export_add', 'lvs0/vol0', '-n', 'vol0');
    fs.writeFileSync(path.join(dir, 'config.json'), await rpc('save_config'));
    await sh(`nbd-client ${GUEST_FORWARD_ADDRESS} ${PORT} /dev/nbd0 -N vol0 -b 512`);
    expect((await sh('cat /sys/block/nbd0/size')).trim()).toBe(String((128 << 20) / 512));
    await sh('mkfs.ext4 -q -F /dev/nbd0 && mount /dev/nbd0 /mnt && head -c 8388608 /dev/urandom > /mnt/f && sync');
    const sum = (await sh('sha256sum /mnt/f | cut -d" " -f1')).trim();
    await sh('umount /mnt && e2fsck -fn /dev/nbd0 && nbd-client -d /dev/nbd0');
    // Thin: the base file holds far less than the lvol's 128 MiB.
    expect(fs.statSync(img).blocks * 512).toBeLessThan(64 << 20);
    expect((await srv.stop('SIGTERM')).code).toBe(0);

    // A new process rebuilds everything from the saved config; the lvstore is found on the base.
    srv = await serve(['--config', path.join(dir, 'config.json')], 1);
    await sh(`nbd-client ${GUEST_FORWARD_ADDRESS} ${PORT} /dev/nbd0 -N vol0 -b 512 && mount /dev/nbd0 /mnt`);
    expect((await sh('sha256sum /mnt/f | cut -d" " -f1')).trim()).toBe(sum);
    await sh('umount /mnt && e2fsck -fn /dev/nbd0 && nbd-client -d /dev/nbd0');
  }, 300_000);
});
