// The kernel over an RBD-backed export: an image of the test Ceph cluster served by an embedded
// server, attached by withKernel (a QEMU guest here), formatted ext4, written, checked with
// e2fsck after umount, and read back after a remount.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Server, silentLogger } from '../../src/index.js';
import type { CephCluster } from '../../src/testing/ceph.js';
import { withKernel } from '../../src/testing/index.js';
import { haveCeph, imageName, sharedCeph } from '../helpers/ceph.js';
import { tool } from '../helpers/tools.js';

const have = haveCeph() && tool('qemu-system-x86_64', 'socat', 'nbd-client', 'mkfs.ext4', 'e2fsck', 'busybox', 'dpkg-deb', 'depmod');
const MiB = 1 << 20;

describe.skipIf(!have)('ext4 on an RBD-backed export under the kernel', () => {
  let ceph: CephCluster;
  let server: Server;
  let image: string;

  beforeAll(async () => {
    ceph = await sharedCeph();
    image = imageName('ext4');
    await ceph.createImage(image, '256M');
    server = new Server({ log: silentLogger() });
    await server.rbdClusters.register('ceph', { configFile: ceph.conf });
    await server.createRbd({ name: 'r0', pool: ceph.pool, image, blockSize: 4096, clusterName: 'ceph' });
    server.addExport('r0');
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    if (image !== undefined) await ceph?.removeImage(image);
  }, 60_000);

  it('mkfs.ext4, write, umount, e2fsck, remount: the files read back', async () => {
    await withKernel({ server, attach: ['r0'] }, async (k) => {
      const dev = k.devices['r0'] as string;
      expect((await k.run(`blockdev --getsize64 ${dev}`)).trim()).toBe(String(256 * MiB));
      await k.run(`mkfs.ext4 -q -F ${dev} && mount ${dev} /mnt`);
      const sums: string[] = [];
      for (const [i, f] of ['a', 'b'].entries())
        sums.push(await k.run(`head -c ${(i + 2) * 4 * MiB} /dev/urandom > /mnt/${f} && sync && sha256sum < /mnt/${f}`));
      await k.run(`umount /mnt && e2fsck -fn ${dev}`);
      await k.run(`mount ${dev} /mnt && echo 3 > /proc/sys/vm/drop_caches`);
      for (const [i, f] of ['a', 'b'].entries()) expect(await k.run(`sha256sum < /mnt/${f}`)).toBe(sums[i]);
      await k.run('umount /mnt');
    });
    // What the kernel wrote is in the cluster: the image has data objects now.
    const du = JSON.parse(await ceph.rbd(['du', '--format', 'json', `${ceph.pool}/${image}`])) as { images: { used_size: number }[] };
    expect(du.images[0]?.used_size ?? 0).toBeGreaterThan(12 * MiB);
  }, 300_000);
});
