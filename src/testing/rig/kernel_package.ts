// The kernel's directory in the cache: the package unpacked, its module tree pruned of hardware
// drivers and indexed with depmod, and `current` naming the kernel a cache uses.

import { promises as fsp } from 'node:fs';
import { dirname, join } from 'node:path';

import { downloadKernelPackage } from './apt.js';
import { exists, renameDirIntoPlace, sweepStaleTemps, tmpName, writeAtomic } from './cache.js';
import { runOk } from './run.js';

// Debian's package is ~400 MiB unpacked, mostly hardware drivers that a VM
// with virtio devices never loads; dropping them keeps the cache near 150 MiB.
const PRUNED_MODULE_DIRS: readonly string[] = [
  'sound',
  'drivers/gpu',
  'drivers/media',
  'drivers/infiniband',
  'drivers/usb',
  'drivers/iio',
  'drivers/staging',
  'drivers/net/wireless',
  'drivers/net/ethernet',
  'drivers/hid',
  'drivers/input',
  'drivers/comedi',
  'drivers/bluetooth',
  'net/wireless',
  'net/mac80211',
  'net/bluetooth',
];

async function findModulesDir(extracted: string): Promise<{ kver: string; dir: string }> {
  // bookworm ships /lib/modules; merged-/usr packages (trixie on) ship /usr/lib/modules.
  for (const base of ['lib/modules', 'usr/lib/modules']) {
    const p = join(extracted, base);
    if (!(await exists(p))) continue;
    const versions = await fsp.readdir(p);
    const kver = versions[0];
    if (versions.length === 1 && kver !== undefined) return { kver, dir: join(p, kver) };
  }
  throw new Error(`no single lib/modules/<version> directory in the kernel package`);
}

async function buildKernelDir(kernelsDir: string): Promise<string> {
  const work = tmpName(kernelsDir, 'fetch');
  await fsp.mkdir(work, { recursive: true });
  try {
    const dl = await downloadKernelPackage(work);
    const extracted = join(work, 'x');
    await runOk('dpkg-deb', ['-x', dl.deb, extracted]);
    await fsp.rm(dl.deb, { force: true });

    const { kver, dir: modSrc } = await findModulesDir(extracted);
    const stage = join(work, 'kernel');
    const modDest = join(stage, 'root', 'lib', 'modules', kver);
    await fsp.mkdir(dirname(modDest), { recursive: true });
    await fsp.rename(modSrc, modDest);
    await fsp.rename(join(extracted, 'boot', `vmlinuz-${kver}`), join(stage, 'vmlinuz'));
    await fsp.rename(join(extracted, 'boot', `config-${kver}`), join(stage, 'config')).catch(() => undefined);
    for (const d of PRUNED_MODULE_DIRS) {
      await fsp.rm(join(modDest, 'kernel', d), { recursive: true, force: true });
    }
    // The package leaves modules.dep to its postinst; generate it (and the
    // alias/softdep indexes) for the tree as pruned.
    await runOk('depmod', ['-b', join(stage, 'root'), kver]);
    await fsp.writeFile(join(stage, 'package'), `${dl.pkg} ${dl.debVersion}\n`);

    await renameDirIntoPlace(stage, join(kernelsDir, kver));
    await writeAtomic(join(kernelsDir, 'current'), `${kver}\n`);
    return kver;
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
}

/** The kernel release to use, fetching and unpacking Debian's kernel the first time. */
export async function ensureKernelDir(kernelsDir: string): Promise<string> {
  await fsp.mkdir(kernelsDir, { recursive: true });
  await sweepStaleTemps(kernelsDir);
  const pinned = process.env['AIONBD_KERNEL_VERSION'];
  let kver: string | undefined = pinned !== undefined && pinned !== '' ? pinned : undefined;
  if (kver === undefined) {
    // Once a kernel is cached it is used as is: tests must not depend on the
    // network or on Debian publishing a new kernel between two runs. Delete
    // the cache directory to move to the newest kernel.
    try {
      kver = (await fsp.readFile(join(kernelsDir, 'current'), 'utf8')).trim() || undefined;
    } catch {
      kver = undefined;
    }
  }
  if (kver !== undefined && (await exists(join(kernelsDir, kver, 'vmlinuz')))) return kver;
  if (pinned !== undefined && pinned !== '') {
    throw new Error(`AIONBD_KERNEL_VERSION=${pinned} is not in ${kernelsDir}`);
  }
  return buildKernelDir(kernelsDir);
}
