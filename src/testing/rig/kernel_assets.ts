// Debian's stock kernel and a small initramfs for the test VM, built once and
// cached.
//
// Layout under the cache directory ($AIONBD_CACHE_DIR, else ~/.cache/aionbd):
//   kernels/<kver>/vmlinuz              the kernel image (bzImage)
//   kernels/<kver>/vmlinux              the same, uncompressed ELF (booted via PVH)
//   kernels/<kver>/config               its build config (for reference)
//   kernels/<kver>/package              "<deb name> <deb version>"
//   kernels/<kver>/root/lib/modules/<kver>/  module tree with depmod's indexes
//   kernels/current                     <kver> chosen for this cache
//   initrd/<kver>-<recipe hash>.img     gzip'd newc cpio: busybox, init, modules
//
// The kernel comes from apt.ts and kernel_package.ts, the initramfs from initramfs.ts, the
// vmlinux from vmlinux.ts; cache.ts keeps two processes building at once apart.

import { join } from 'node:path';

import { cacheDir } from './cache.js';
import { buildInitrd } from './initramfs.js';
import { ensureKernelDir } from './kernel_package.js';
import { ensureVmlinux } from './vmlinux.js';

export interface KernelAssets {
  /** Path of the kernel image (bzImage). */
  kernel: string;
  /** Path of the initramfs built for it. */
  initrd: string;
  /** Kernel release, as `uname -r` prints it in the guest. */
  version: string;
  /** Directory holding `<version>/` with the full module tree (shared read-only with the guest). */
  modulesDir: string;
}

let pending: Promise<KernelAssets> | undefined;

/**
 * Returns the cached kernel and initramfs, fetching Debian's kernel package
 * with `apt-get download` the first time (one line on stderr says so).
 * Needs apt-get, dpkg-deb, depmod (kmod) and busybox-static.
 */
export function ensureKernelAssets(): Promise<KernelAssets> {
  pending ??= build().catch((e: unknown) => {
    pending = undefined; // let a later call retry (e.g. after apt-get update by hand)
    throw e;
  });
  return pending;
}

async function build(): Promise<KernelAssets> {
  const root = cacheDir();
  const kernelsDir = join(root, 'kernels');
  const kver = await ensureKernelDir(kernelsDir);
  const kdir = join(kernelsDir, kver);
  const modulesDir = join(kdir, 'root', 'lib', 'modules');
  const initrd = await buildInitrd(join(root, 'initrd'), kver, join(modulesDir, kver));
  const vmlinux = process.env['AIONBD_VM_BZIMAGE'] === '1' ? undefined : await ensureVmlinux(kdir);
  return { kernel: vmlinux ?? join(kdir, 'vmlinuz'), initrd, version: kver, modulesDir };
}
