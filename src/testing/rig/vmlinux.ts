// The uncompressed kernel (vmlinux), booted through its PVH entry point where it has one.

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';

import { exists, writeAtomic } from './cache.js';
import { run } from './run.js';

const COMPRESSED_KERNEL_MAGICS: readonly { magic: Buffer; cmd: string; args: string[] }[] = [
  { magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), cmd: 'xz', args: ['-dc', '--single-stream'] },
  { magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), cmd: 'zstd', args: ['-dcq'] },
  { magic: Buffer.from([0x1f, 0x8b, 0x08]), cmd: 'gzip', args: ['-dc'] },
];

/**
 * Unpacks the ELF vmlinux from the bzImage, when the kernel has a PVH entry
 * point: QEMU then loads it directly, skipping the BIOS, the real-mode setup
 * and the in-guest xz decompression, which under TCG take three of the
 * eight seconds a boot takes. Returns undefined when that is not possible;
 * the bzImage works, only slower.
 */
export async function ensureVmlinux(kdir: string): Promise<string | undefined> {
  const out = join(kdir, 'vmlinux');
  if (await exists(out)) return out;
  let config = '';
  try {
    config = await fsp.readFile(join(kdir, 'config'), 'utf8');
  } catch {
    return undefined;
  }
  if (!/^CONFIG_PVH=y$/m.test(config)) return undefined;
  const image = await fsp.readFile(join(kdir, 'vmlinuz'));
  for (const { magic, cmd, args } of COMPRESSED_KERNEL_MAGICS) {
    const at = image.indexOf(magic);
    if (at < 0) continue;
    // gzip and xz complain about the bytes after the stream; the output is
    // complete all the same, so judge by the ELF header, not the exit code.
    const r = await run(cmd, args, { input: image.subarray(at) }).catch(() => undefined);
    if (r === undefined || r.stdout.length < 1 << 20 || r.stdout.readUInt32BE(0) !== 0x7f454c46) continue;
    await writeAtomic(out, r.stdout);
    return out;
  }
  return undefined;
}
