// Real NBD clients (nbdcopy, fio's nbd engine, qemu-io) against `aionbd serve --uring`: the
// bytes they write are the file's, read back from it, through the io_uring engine.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain, run, type RunResult } from '../helpers/run.js';
import { startServer, stopAllServers, type TestServer } from '../helpers/server.js';
import { tool } from '../helpers/tools.js';

const has = { nbdcopy: tool('nbdcopy'), qemu: tool('qemu-io'), fio: tool('fio') };

const MiB = 1 << 20;

function expectOk(r: RunResult): void {
  expect(r.code, explain(r)).toBe(0);
}

function sha256(buf: Buffer): string {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

function qemuIo(uri: string, cmds: string[]): Promise<RunResult> {
  return run('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri], { timeoutMs: 30_000 });
}

/** The file's bytes [off, off + len), read by the test itself rather than through the server. */
function fileBytes(file: string, off: number, len: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(len);
    fs.readSync(fd, b, 0, len, off);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

describe('clients against a uring bdev (64M, 4096-byte blocks) on a unix socket', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ args: ['--uring', 'u.img,name=u0,size=64M,bs=4096'], exports: 1 });
  });
  afterAll(async () => {
    await stopAllServers();
  });

  it('is served by the uring module', () => {
    expect(srv.stdout).toMatch(/exporting "u0" \(64M, uring bdev, block size 4096\)/);
  });

  it.skipIf(!has.nbdcopy)(
    'nbdcopy copies 32 MiB of random data in and out; the file holds the same bytes',
    async () => {
      const data = crypto.randomBytes(32 * MiB);
      const src = srv.file('random.bin');
      const back = srv.file('back.bin');
      fs.writeFileSync(src, data);
      expectOk(await run('nbdcopy', ['--flush', src, srv.uri('u0')], { timeoutMs: 30_000 }));
      expectOk(await run('nbdcopy', [srv.uri('u0'), back], { timeoutMs: 30_000 }));
      const want = sha256(data);
      expect(sha256(fs.readFileSync(back).subarray(0, data.length))).toBe(want);
      expect(sha256(fileBytes(srv.file('u.img'), 0, data.length))).toBe(want);
    },
    60_000,
  );

  it.skipIf(!has.fio)(
    'fio --ioengine=nbd randrw with crc32c verification',
    async () => {
      const r = await run(
        'fio',
        [
          '--name=uring',
          '--ioengine=nbd',
          `--uri=${srv.uri('u0')}`,
          '--rw=randrw',
          '--bs=4k',
          '--iodepth=32',
          `--offset=${32 * MiB}`,
          '--size=16M',
          '--verify=crc32c',
          '--verify_fatal=1',
          '--runtime=30',
          '--verify_state_save=0',
          '--output-format=json',
        ],
        { timeoutMs: 60_000, cwd: srv.dir },
      );
      expectOk(r);
      const report = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as {
        jobs: { error: number; read: { io_bytes: number }; write: { io_bytes: number } }[];
      };
      expect(report.jobs).toHaveLength(1);
      expect(report.jobs[0]?.error).toBe(0);
      expect(report.jobs[0]?.write.io_bytes).toBeGreaterThan(0);
      expect(report.jobs[0]?.read.io_bytes).toBeGreaterThan(0);
      expect(r.stderr).not.toMatch(/verify|error/i);
    },
    60_000,
  );

  it.skipIf(!has.qemu)(
    'qemu-io: a FUA write and a flush are accepted, unaligned reads and writes land where they should',
    async () => {
      const off = 50 * MiB;
      const w = await qemuIo(srv.uri('u0'), [
        `write -P 0x11 ${off} 65536`,
        `write -f -P 0x22 ${off + 4096} 4096`, // FUA
        'flush',
        `write -P 0x33 ${off + 8192 + 100} 1000`, // inside one block: read-modify-write
        `write -P 0x44 ${off + 16384 - 7} 4109`, // across three blocks, unaligned both ends
      ]);
      expectOk(w);
      expect(w.stdout).not.toMatch(/failed/i);
      const reads = [
        `read -P 0x11 ${off} 4096`,
        `read -P 0x22 ${off + 4096} 4096`,
        `read -P 0x11 ${off + 8192} 100`,
        `read -P 0x33 ${off + 8192 + 100} 1000`,
        `read -P 0x11 ${off + 8192 + 1100} ${16384 - 7 - 8192 - 1100}`,
        `read -P 0x44 ${off + 16384 - 7} 4109`,
        `read -P 0x11 ${off + 16384 + 4102} 1`,
      ];
      const r = await qemuIo(srv.uri('u0'), reads);
      expectOk(r);
      expect(r.stdout).not.toMatch(/failed/i);
      expect(r.stdout.match(/^read \d+\/\d+ bytes/gm)).toHaveLength(reads.length);
      // The file itself, past the server.
      const f = fileBytes(srv.file('u.img'), off, 65536);
      expect(f.subarray(4096, 8192).every((x) => x === 0x22)).toBe(true);
      expect(f.subarray(8192 + 100, 8192 + 1100).every((x) => x === 0x33)).toBe(true);
      expect(f.subarray(16384 - 7, 16384 + 4102).every((x) => x === 0x44)).toBe(true);
      expect(f[16384 + 4102]).toBe(0x11);
    },
    60_000,
  );
});
