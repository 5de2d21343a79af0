// The initramfs of the test VM: busybox, the guest's /init and command loop (guest_init.ts) and
// the modules the boot needs, in dependency order, as a gzip'd newc cpio; cached under a name
// that hashes its recipe, so that any change to it builds a new one.

import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

import { findStaticBusybox } from './busybox.js';
import { exists, sweepStaleTemps, writeAtomic } from './cache.js';
import { S_IFCHR, S_IFDIR, S_IFREG, writeCpio, type CpioEntry } from './cpio.js';
import { STAGE1_INIT, STAGE2_LOOP } from './guest_init.js';
import { moduleNameOfPath, readModuleIndex, resolveModuleOrder } from './module_deps.js';
import { runOk } from './run.js';

/** Modules the initramfs loads before it mounts the root (dependencies are added before each). */
export const BOOT_MODULES: readonly string[] = ['virtio_pci', 'virtio_console', 'virtio_net', '9pnet_virtio', '9p'];

/**
 * Modules the initramfs loads in the background, for the tests' use. Any
 * other module (xfs, dm-*, ...) loads on demand from the full tree, through
 * `modprobe` in the guest or the kernel's own requests (`mount -t xfs`):
 * xfs alone would add most of a second to every boot under TCG.
 */
export const EXTRA_MODULES: readonly string[] = ['nbd', 'crc32c_generic', 'crc32c_intel', 'libcrc32c', 'crc16', 'ext4', 'loop'];

// Bump when the initramfs recipe changes in a way the hash below cannot see.
const RECIPE_VERSION = 1;

async function readModuleFile(path: string): Promise<Buffer> {
  // busybox insmod cannot read compressed modules; Debian 12 ships them
  // plain, later releases compress them.
  if (path.endsWith('.ko')) return fsp.readFile(path);
  if (path.endsWith('.ko.gz')) return gunzipSync(await fsp.readFile(path));
  if (path.endsWith('.ko.xz')) return runOk('xz', ['-dc', path]);
  if (path.endsWith('.ko.zst')) return runOk('zstd', ['-dcq', path]);
  throw new Error(`unknown module file type: ${path}`);
}

/** Builds (or finds in the cache) the initramfs for kernel `kver` whose module tree is `versionDir`. */
export async function buildInitrd(initrdDir: string, kver: string, versionDir: string): Promise<string> {
  const busyboxPath = await findStaticBusybox();
  const busybox = await fsp.readFile(busyboxPath);
  const idx = await readModuleIndex(versionDir);
  const done = new Set<string>();
  const bootOrder = resolveModuleOrder(idx, BOOT_MODULES, done);
  const extraOrder = resolveModuleOrder(idx, EXTRA_MODULES, done);

  const recipe = createHash('sha256');
  recipe.update(`${RECIPE_VERSION}\0${kver}\0${STAGE1_INIT}\0${STAGE2_LOOP}\0`);
  recipe.update(`${bootOrder.join(',')}\0${extraOrder.join(',')}\0`);
  recipe.update(createHash('sha256').update(busybox).digest());
  const out = join(initrdDir, `${kver}-${recipe.digest('hex').slice(0, 16)}.img`);
  if (await exists(out)) return out;

  const entries: CpioEntry[] = [];
  for (const d of ['bin', 'dev', 'etc', 'lib', 'lib/modules', 'proc', 'sys']) {
    entries.push({ name: d, mode: S_IFDIR | 0o755 });
  }
  // Without it the kernel starts /init with no stdin/stdout/stderr: Debian's
  // kernel does not mount devtmpfs by itself.
  entries.push({ name: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 });
  entries.push({ name: 'bin/busybox', mode: S_IFREG | 0o755, data: busybox });
  entries.push({ name: 'init', mode: S_IFREG | 0o755, data: Buffer.from(STAGE1_INIT) });
  entries.push({ name: 'loop.sh', mode: S_IFREG | 0o644, data: Buffer.from(STAGE2_LOOP) });
  for (const [list, order] of [
    ['boot', bootOrder],
    ['extra', extraOrder],
  ] as const) {
    const names: string[] = [];
    for (const rel of order) {
      const file = `${moduleNameOfPath(rel)}.ko`;
      names.push(file);
      const data = await readModuleFile(join(versionDir, rel));
      entries.push({ name: `lib/modules/${file}`, mode: S_IFREG | 0o644, data });
    }
    entries.push({ name: `etc/aionbd-modules-${list}`, mode: S_IFREG | 0o644, data: Buffer.from(`${names.join('\n')}\n`) });
  }

  await fsp.mkdir(initrdDir, { recursive: true });
  await sweepStaleTemps(initrdDir);
  await writeAtomic(out, gzipSync(writeCpio(entries), { level: 6 }));
  return out;
}
