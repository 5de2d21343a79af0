// The public kernel rig, withKernel from 'aionbd/testing', as a test author uses it. On this
// machine (no nbd driver) it boots the VM; on one with /dev/nbd0 and root it attaches here,
// which attach.test.ts covers by running it inside the guest.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Server, silentLogger } from '../../src/index.js';
import { VmTimeoutError, withKernel, type Kernel } from '../../src/testing/index.js';
import { tool } from '../helpers/tools.js';

const have = tool('qemu-system-x86_64', 'socat', 'nbd-client', 'mkfs.ext4', 'e2fsck', 'busybox', 'dpkg-deb', 'depmod');
const MiB = 1 << 20;

function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

describe.skipIf(!have)('withKernel (aionbd/testing)', () => {
  it('exports: ext4 with known checksums survives umount, fsck and remount; attach/detach; everything torn down', async () => {
    let qemu = -1;
    const files = ['a', 'b', 'c'];
    const result = await withKernel(
      {
        exports: [
          { name: 'd0', size: '256M' },
          { name: 'd1', size: '64M' },
        ],
      },
      async (k: Kernel) => {
        qemu = k.vm?.pid ?? -1;
        expect(k.devices).toEqual(
          k.where === 'vm' ? { d0: '/dev/nbd0', d1: '/dev/nbd1' } : { d0: expect.any(String), d1: expect.any(String) },
        );
        const dev = k.devices['d0'] as string;
        expect((await k.run(`blockdev --getsize64 ${dev}`)).trim()).toBe(String(256 * MiB));
        await k.run(`mkfs.ext4 -q -F ${dev} && mount ${dev} /mnt`);
        const sums: string[] = [];
        for (const [i, f] of files.entries())
          sums.push(await k.run(`head -c ${(i + 1) * MiB} /dev/urandom > /mnt/${f} && sync && sha256sum < /mnt/${f}`));
        await k.run(`umount /mnt && e2fsck -fn ${dev} && mount ${dev} /mnt && echo 3 > /proc/sys/vm/drop_caches`);
        for (const [i, f] of files.entries()) expect(await k.run(`sha256sum < /mnt/${f}`)).toBe(sums[i]);
        await k.run('umount /mnt');
        // A failing command rejects with its output.
        await expect(k.run('echo oops; exit 3')).rejects.toThrow(/exit 3[\s\S]*oops/);
        // Detach and attach again, with 2 connections this time.
        const d1 = k.devices['d1'] as string;
        await k.detach(d1);
        expect(k.devices['d1']).toBeUndefined();
        const again = await k.attach('d1', { connections: 2 });
        expect((await k.run(`blockdev --getsize64 ${again}`)).trim()).toBe(String(64 * MiB));
        return 'done';
      },
    );
    expect(result).toBe('done');
    if (qemu > 0) expect(gone(qemu)).toBe(true);
  }, 300_000);

  it("server: attaches an embedded server's export; a throwing callback still tears down, the server stays open", async () => {
    const server = new Server({ log: silentLogger() });
    try {
      await server.createMalloc({ name: 'm0', blockSize: 4096, numBlocks: 4096 });
      server.addExport('m0');
      let qemu = -1;
      await expect(
        withKernel({ server, attach: ['m0'] }, async (k) => {
          qemu = k.vm?.pid ?? -1;
          const dev = k.devices['m0'] as string;
          expect((await k.run(`cat /sys/block/${dev.slice(5)}/queue/logical_block_size`)).trim()).toBe('4096');
          await k.run(`echo hello | dd of=${dev} bs=4096 conv=sync oflag=direct status=none`);
          throw new Error('the test failed here');
        }),
      ).rejects.toThrow('the test failed here');
      if (qemu > 0) expect(gone(qemu)).toBe(true);
      // The server is the caller's: still open, and it holds what the kernel wrote.
      expect(server.getExports()).toHaveLength(1);
      for (let i = 0; i < 50 && server.nbd.connections > 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(server.nbd.connections).toBe(0);
    } finally {
      await server.close();
    }
  }, 240_000);

  it('is bounded: a callback that outlives timeoutMs is abandoned and the VM is gone', async () => {
    let qemu = -1;
    const t0 = Date.now();
    const dir = fs.mkdtempSync('/tmp/aionbd-wk-');
    try {
      await expect(
        withKernel({ exports: [{ name: 'd0', size: '16M', file: `${dir}/d0.img` }], timeoutMs: 12_000 }, async (k) => {
          qemu = k.vm?.pid ?? -1;
          await k.sh('sleep 600', { timeoutMs: 600_000 });
        }),
      ).rejects.toBeInstanceOf(VmTimeoutError);
      expect(Date.now() - t0).toBeLessThan(60_000);
      if (qemu > 0) expect(gone(qemu)).toBe(true);
      // A file named by the caller is the caller's: it stays.
      expect(fs.statSync(`${dir}/d0.img`).size).toBe(16 * MiB);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
