// The "newc" cpio archive writer for the initramfs.

export interface CpioEntry {
  name: string;
  mode: number;
  data?: Buffer;
  rdevMajor?: number;
  rdevMinor?: number;
}

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFCHR = 0o020000;

/**
 * Writes a "newc" cpio archive, the format the kernel unpacks as initramfs.
 * Done here rather than with cpio(1) so that device nodes (/dev/console) need
 * no root, and the archive is byte-for-byte reproducible.
 */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  const pad = (): void => {
    const n = (4 - (offset % 4)) % 4;
    if (n > 0) {
      parts.push(Buffer.alloc(n));
      offset += n;
    }
  };
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  let ino = 1;
  const all: CpioEntry[] = [...entries, { name: 'TRAILER!!!', mode: 0 }];
  for (const e of all) {
    const data = e.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${e.name}\0`, 'utf8');
    const isTrailer = e.name === 'TRAILER!!!';
    const header =
      '070701' +
      hex(isTrailer ? 0 : ino++) +
      hex(e.mode) +
      hex(0) + // uid
      hex(0) + // gid
      hex((e.mode & S_IFDIR) === S_IFDIR && !isTrailer ? 2 : 1) +
      hex(0) + // mtime: fixed for reproducibility
      hex(data.length) +
      hex(0) +
      hex(0) +
      hex(e.rdevMajor ?? 0) +
      hex(e.rdevMinor ?? 0) +
      hex(name.length) +
      hex(0);
    parts.push(Buffer.from(header, 'ascii'), name);
    offset += header.length + name.length;
    pad();
    if (data.length > 0) {
      parts.push(data);
      offset += data.length;
      pad();
    }
  }
  return Buffer.concat(parts);
}
