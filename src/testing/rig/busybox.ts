// The initramfs's only program: a statically linked busybox from the host.

import { promises as fsp } from 'node:fs';

/** True if the ELF file has no PT_INTERP header, i.e. it runs without a dynamic loader. */
export function isStaticElf(buf: Buffer): boolean {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2) {
    throw new Error('not a 64-bit ELF file');
  }
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > buf.length) break;
    if (buf.readUInt32LE(off) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

export async function findStaticBusybox(): Promise<string> {
  const candidates = [process.env['AIONBD_BUSYBOX'], '/bin/busybox', '/usr/bin/busybox'];
  for (const c of candidates) {
    if (c === undefined || c === '') continue;
    let head: Buffer;
    try {
      head = await fsp.readFile(c);
    } catch {
      continue;
    }
    if (isStaticElf(head)) return c;
  }
  throw new Error('no statically linked busybox found: install the Debian package busybox-static');
}
