// A kernel file system on this machine's own kernel, with no NBD driver: nbdfuse exposes the
// export as a file, and mount -o loop puts ext4 on it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../helpers/run.js';
import { startServer, stopAllServers } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';

const root = process.getuid?.() === 0;
const have = tool('nbdfuse', 'mkfs.ext4', 'e2fsck', 'mount', 'umount') && (fs.existsSync('/dev/fuse') || process.env['CI'] === 'true');

describe.skipIf(!have || !root)('nbdfuse + mount -o loop', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const f of cleanups.splice(0).reverse()) await f();
    await stopAllServers();
  });

  it('ext4 on the FUSE file: write, unmount, fsck clean, data on the image', async () => {
    const srv = await startServer({ aio: ['d.img,name=f,size=64M'] });
    const dir = tmpDir('aionbd-fuse-');
    cleanups.push(() => rmrf(dir));
    const fuse = path.join(dir, 'fuse');
    const mnt = path.join(dir, 'mnt');
    fs.mkdirSync(fuse);
    fs.mkdirSync(mnt);
    const nf = spawn('nbdfuse', [path.join(fuse, 'nbd'), srv.uri('f')], { stdio: 'ignore' });
    cleanups.push(async () => {
      await run('umount', ['-l', fuse], { timeoutMs: 10_000 });
      nf.kill('SIGKILL');
    });
    const file = path.join(fuse, 'nbd');
    for (let i = 0; i < 100 && !(fs.existsSync(file) && fs.statSync(file).size > 0); i++) await new Promise((r) => setTimeout(r, 100));
    expect(fs.statSync(file).size).toBe(64 << 20);
    expect((await run('mkfs.ext4', ['-q', '-F', file], { timeoutMs: 60_000 })).code).toBe(0);
    expect((await run('mount', ['-o', 'loop', file, mnt], { timeoutMs: 30_000 })).code).toBe(0);
    const data = Buffer.alloc(3 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    fs.writeFileSync(path.join(mnt, 'f.bin'), data);
    expect((await run('umount', [mnt], { timeoutMs: 30_000 })).code).toBe(0);
    const fsck = await run('e2fsck', ['-fn', file], { timeoutMs: 60_000 });
    expect(fsck.code).toBe(0);
    expect((await run('mount', ['-o', 'loop,ro', file, mnt], { timeoutMs: 30_000 })).code).toBe(0);
    expect(fs.readFileSync(path.join(mnt, 'f.bin')).equals(data)).toBe(true);
    expect((await run('umount', [mnt], { timeoutMs: 30_000 })).code).toBe(0);
  }, 120_000);
});
