// Real NBD clients (libnbd's nbdinfo/nbdcopy/nbdsh, QEMU's qemu-io/qemu-img, fio's nbd
// engine) against `aionbd serve` running as a child process with file-backed AIO bdevs.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain, run, type RunResult } from '../helpers/run.js';
import { startServer, stopAllServers, type TestServer } from '../helpers/server.js';
import { nbdshEnv, nbdshTool, tool } from '../helpers/tools.js';

const has = {
  nbdinfo: tool('nbdinfo'),
  nbdcopy: tool('nbdcopy'),
  qemu: tool('qemu-io', 'qemu-img'),
  fio: tool('fio'),
  nbdsh: nbdshTool(),
};

const MiB = 1 << 20;
const D0_SIZE = 256 * MiB;
const C0_SIZE = 64 * MiB;

function expectOk(r: RunResult): void {
  expect(r.code, explain(r)).toBe(0);
}

/** fio prints "fio: connected to NBD server" before its JSON report. */
interface FioJob {
  jobname: string;
  error: number;
  read: { io_bytes: number };
  write: { io_bytes: number };
}
function fioJobs(r: RunResult): FioJob[] {
  const at = r.stdout.indexOf('{');
  expect(at, explain(r)).toBeGreaterThanOrEqual(0);
  const report = JSON.parse(r.stdout.slice(at)) as { jobs: FioJob[] };
  return report.jobs;
}

function sha256(buf: Buffer): string {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

/** qemu-io with one -c per command, on a raw image at `uri`. */
function qemuIo(uri: string, cmds: string[], extra: string[] = []): Promise<RunResult> {
  return run('qemu-io', ['-f', 'raw', ...extra, ...cmds.flatMap((c) => ['-c', c]), uri], { timeoutMs: 60_000 });
}

describe('clients against two AIO bdevs (d0 256M, c0 64M) on a unix socket', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ aio: ['d.img,name=d0,size=256M', 'c.img,name=c0,size=64M'] });
  });
  afterAll(async () => {
    await stopAllServers();
  });

  it.skipIf(!has.nbdinfo)(
    'nbdinfo --size reports the exact size',
    async () => {
      const r = await run('nbdinfo', ['--size', srv.uri('d0')], { timeoutMs: 20_000 });
      expectOk(r);
      expect(r.stdout.trim()).toBe(String(D0_SIZE));
      const c = await run('nbdinfo', ['--size', srv.uri('c0')], { timeoutMs: 20_000 });
      expectOk(c);
      expect(c.stdout.trim()).toBe(String(C0_SIZE));
    },
    30_000,
  );

  it.skipIf(!has.nbdinfo)(
    'nbdinfo --list lists every export with its size',
    async () => {
      const r = await run('nbdinfo', ['--list', '--json', srv.uri('')], { timeoutMs: 20_000 });
      expectOk(r);
      const j = JSON.parse(r.stdout) as { exports: { 'export-name': string; 'export-size': number }[] };
      const got = j.exports.map((e) => [e['export-name'], e['export-size']]).sort();
      expect(got).toEqual([
        ['c0', C0_SIZE],
        ['d0', D0_SIZE],
      ]);

      const text = await run('nbdinfo', ['--list', srv.uri('')], { timeoutMs: 20_000 });
      expectOk(text);
      expect(text.stdout).toContain('export="d0"');
      expect(text.stdout).toContain('export="c0"');
    },
    30_000,
  );

  it.skipIf(!has.nbdinfo)(
    'nbdinfo --json shows flush, FUA, trim, zero and multi-conn',
    async () => {
      const r = await run('nbdinfo', ['--json', srv.uri('d0')], { timeoutMs: 20_000 });
      expectOk(r);
      const j = JSON.parse(r.stdout) as { protocol: string; exports: Record<string, unknown>[] };
      expect(j.protocol).toBe('newstyle-fixed');
      expect(j.exports).toHaveLength(1);
      expect(j.exports[0]).toMatchObject({
        'export-name': 'd0',
        'export-size': D0_SIZE,
        is_read_only: false,
        can_flush: true,
        can_fua: true,
        can_trim: true,
        can_zero: true,
        can_multi_conn: true,
        block_size_minimum: 1,
      });
    },
    30_000,
  );

  it.skipIf(!has.nbdcopy)(
    'nbdcopy copies 64 MiB of random data in and out, byte for byte',
    async () => {
      const data = crypto.randomBytes(C0_SIZE);
      const src = srv.file('random.bin');
      const back = srv.file('back.bin');
      fs.writeFileSync(src, data);
      expectOk(await run('nbdcopy', ['--flush', src, srv.uri('c0')], { timeoutMs: 60_000 }));
      expectOk(await run('nbdcopy', [srv.uri('c0'), back], { timeoutMs: 60_000 }));
      const want = sha256(data);
      expect(sha256(fs.readFileSync(back))).toBe(want);
      // The server wrote with O_DIRECT; the image file itself holds the bytes.
      const img = fs.readFileSync(srv.file('c.img'));
      expect(img.length).toBe(C0_SIZE);
      expect(sha256(img)).toBe(want);
    },
    120_000,
  );

  // Disjoint regions of d0, each with its own pattern, so a misplaced write shows up.
  const regions: { off: number; len: number; pat: number }[] = [
    { off: 0, len: 4096, pat: 0x5a },
    { off: 8192 + 512, len: 1536, pat: 0x11 }, // 512-aligned, not 4K-aligned
    { off: MiB, len: MiB, pat: 0x22 }, // one large request
    { off: 250 * MiB, len: 65536, pat: 0x33 },
    { off: D0_SIZE - 4096, len: 3584, pat: 0x44 },
    { off: D0_SIZE - 512, len: 512, pat: 0x5a }, // the last block
  ];

  it.skipIf(!has.qemu)(
    'qemu-io writes patterns at several offsets (last block too) and reads them back',
    async () => {
      const w = await qemuIo(
        srv.uri('d0'),
        regions.map((r) => `write -P 0x${r.pat.toString(16)} ${r.off} ${r.len}`),
      );
      expectOk(w);
      expect(w.stdout).not.toMatch(/failed/i);
      // A new connection reads them back, and the gaps between them are still zero.
      const reads = regions.map((r) => `read -P 0x${r.pat.toString(16)} ${r.off} ${r.len}`);
      reads.push(
        `read -P 0 4096 4096`,
        `read -P 0 ${8192 + 2048} ${MiB - 8192 - 2048}`,
        `read -P 0 ${2 * MiB} ${MiB}`,
        `read -P 0 ${D0_SIZE - 8192} 4096`,
      );
      const r = await qemuIo(srv.uri('d0'), reads);
      expectOk(r);
      expect(r.stdout).not.toMatch(/failed/i);
      expect(r.stdout.match(/^read \d+\/\d+ bytes/gm)).toHaveLength(reads.length);
      // A wrong pattern must fail, or the checks above prove nothing.
      const neg = await qemuIo(srv.uri('d0'), ['read -P 0x5b 0 4096']);
      expect(neg.code, explain(neg)).not.toBe(0);
      expect(neg.stdout).toMatch(/Pattern verification failed/);
    },
    60_000,
  );

  it.skipIf(!has.qemu)(
    'qemu-io write -z reads back as zeroes and leaves its neighbours alone',
    async () => {
      const off = 4 * MiB;
      expectOk(await qemuIo(srv.uri('d0'), [`write -P 0x66 ${off} 65536`]));
      const z = await qemuIo(srv.uri('d0'), [`write -z ${off + 4096} 8192`, `write -z ${off + 32768} 512`]);
      expectOk(z);
      const r = await qemuIo(srv.uri('d0'), [
        `read -P 0x66 ${off} 4096`,
        `read -P 0 ${off + 4096} 8192`,
        `read -P 0x66 ${off + 12288} ${32768 - 12288}`,
        `read -P 0 ${off + 32768} 512`,
        `read -P 0x66 ${off + 33280} ${65536 - 33280}`,
      ]);
      expectOk(r);
      expect(r.stdout).not.toMatch(/failed/i);
    },
    60_000,
  );

  it.skipIf(!has.qemu)(
    'qemu-io discard, write -f (FUA) and flush succeed',
    async () => {
      const off = 6 * MiB;
      const r = await qemuIo(srv.uri('d0'), [
        `write -P 0x77 ${off} 65536`,
        `discard ${off} 65536`,
        `write -f -P 0x78 ${off} 4096`,
        'flush',
        `read -P 0x78 ${off} 4096`,
      ]);
      expectOk(r);
      expect(r.stdout).not.toMatch(/failed/i);
    },
    60_000,
  );

  it.skipIf(!has.qemu)(
    'qemu-img info shows the virtual size',
    async () => {
      const r = await run('qemu-img', ['info', '--output=json', '-f', 'raw', srv.uri('d0')], { timeoutMs: 20_000 });
      expectOk(r);
      const j = JSON.parse(r.stdout) as { 'virtual-size': number; format: string };
      expect(j['virtual-size']).toBe(D0_SIZE);
      expect(j.format).toBe('raw');
    },
    30_000,
  );

  it.skipIf(!has.fio)(
    'fio randrw 4k at iodepth 32 with crc32c verify',
    async () => {
      const r = await run(
        'fio',
        [
          '--name=randrw',
          '--ioengine=nbd',
          `--uri=${srv.uri('d0')}`,
          '--rw=randrw',
          '--bs=4k',
          '--iodepth=32',
          `--offset=${64 * MiB}`,
          '--size=64M',
          '--verify=crc32c',
          '--verify_fatal=1',
          '--runtime=60',
          '--verify_state_save=0',
          '--output-format=json',
        ],
        { timeoutMs: 120_000, cwd: srv.dir },
      );
      expectOk(r);
      const jobs = fioJobs(r);
      expect(jobs).toHaveLength(1);
      expect(jobs[0]?.error).toBe(0);
      expect(jobs[0]?.write.io_bytes).toBeGreaterThan(0);
      expect(jobs[0]?.read.io_bytes).toBeGreaterThan(0);
      expect(r.stderr).not.toMatch(/verify|error/i);
    },
    150_000,
  );

  it.skipIf(!has.fio)(
    'fio: four connections on distinct ranges, each verified',
    async () => {
      const r = await run(
        'fio',
        [
          '--name=multi',
          '--ioengine=nbd',
          `--uri=${srv.uri('d0')}`,
          '--rw=randrw',
          '--bs=4k',
          '--iodepth=16',
          '--numjobs=4',
          `--offset=${128 * MiB}`,
          '--size=16M',
          '--offset_increment=16M',
          '--verify=crc32c',
          '--verify_fatal=1',
          '--runtime=60',
          '--verify_state_save=0',
          '--output-format=json',
        ],
        { timeoutMs: 120_000, cwd: srv.dir },
      );
      expectOk(r);
      const jobs = fioJobs(r);
      expect(jobs).toHaveLength(4);
      for (const j of jobs) {
        expect(j.error).toBe(0);
        expect(j.write.io_bytes).toBeGreaterThan(0);
      }
      // fio's nbd engine opens one libnbd handle (one connection) per job.
      expect(r.stdout.match(/connected to NBD server/g)?.length ?? 0).toBeGreaterThanOrEqual(4);
      expect(r.stderr).not.toMatch(/verify|error/i);
    },
    150_000,
  );
});

describe('a read-only export', () => {
  const SIZE = 16 * MiB;
  const FILL = 0x77;
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({
      aio: ['r.img,name=r0,readonly'],
      prepare: (dir) => {
        fs.writeFileSync(`${dir}/r.img`, Buffer.alloc(SIZE, FILL));
      },
    });
  });
  afterAll(async () => {
    await stopAllServers();
  });

  it.skipIf(!has.nbdinfo)(
    'nbdinfo --json says is_read_only',
    async () => {
      const r = await run('nbdinfo', ['--json', srv.uri('r0')], { timeoutMs: 20_000 });
      expectOk(r);
      const j = JSON.parse(r.stdout) as { exports: Record<string, unknown>[] };
      expect(j.exports[0]).toMatchObject({ 'export-name': 'r0', is_read_only: true, 'export-size': SIZE });
    },
    30_000,
  );

  it.skipIf(!has.qemu)(
    'qemu-io cannot write, can read, and the file is unchanged',
    async () => {
      const w = await qemuIo(srv.uri('r0'), ['write -P 0x11 0 4096']);
      expect(w.code, explain(w)).not.toBe(0);
      const r = await qemuIo(
        srv.uri('r0'),
        [`read -P 0x${FILL.toString(16)} 0 4096`, `read -P 0x${FILL.toString(16)} ${SIZE - 512} 512`],
        ['-r'],
      );
      expectOk(r);
      expect(r.stdout).not.toMatch(/failed/i);
      expect(fs.readFileSync(srv.file('r.img')).equals(Buffer.alloc(SIZE, FILL))).toBe(true);
    },
    60_000,
  );

  it.skipIf(!has.nbdsh)(
    'a WRITE, TRIM or WRITE_ZEROES sent anyway gets EPERM',
    async () => {
      // libnbd refuses writes to a read-only export itself unless strict mode is off; turn it off
      // so the requests reach the server.
      const script = [
        'import errno',
        'h.set_strict_mode(0)',
        'for name, f in [("write", lambda: h.pwrite(b"\\x11" * 512, 0)), ("trim", lambda: h.trim(512, 0)), ("zero", lambda: h.zero(512, 0))]:',
        '    try:',
        '        f()',
        '        print(name, "OK")',
        '    except nbd.Error as e:',
        '        print(name, errno.errorcode.get(e.errno, e.errno))',
        'print("read", h.pread(512, 0)[:4].hex())',
      ].join('\n');
      const env = nbdshEnv() ?? process.env;
      const r = await run('nbdsh', ['-u', srv.uri('r0'), '-c', script], { timeoutMs: 20_000, env });
      expectOk(r);
      expect(r.stdout.trim().split('\n')).toEqual(['write EPERM', 'trim EPERM', 'zero EPERM', 'read 77777777']);
      expect(fs.readFileSync(srv.file('r.img')).equals(Buffer.alloc(SIZE, FILL))).toBe(true);
    },
    30_000,
  );
});

describe('durability', () => {
  afterAll(async () => {
    await stopAllServers();
  });

  it.skipIf(!has.qemu)(
    'what qemu-io wrote is in the image file after SIGTERM',
    async () => {
      const SIZE = 16 * MiB;
      const srv = await startServer({ aio: ['d.img,name=d0,size=16M'] });
      const writes = [
        { off: 0, len: 65536, pat: 0xc3, how: 'write' },
        { off: MiB, len: 4096, pat: 0x3c, how: 'write -f' }, // FUA
        { off: 5 * MiB + 512, len: 512, pat: 0x5a, how: 'write' },
        { off: SIZE - 512, len: 512, pat: 0xa5, how: 'write' }, // the last block
      ];
      const r = await qemuIo(
        srv.uri('d0'),
        writes.map((w) => `${w.how} -P 0x${w.pat.toString(16)} ${w.off} ${w.len}`),
      );
      expectOk(r);
      // A second client writes and disconnects without flushing: the server's stop must still persist it.
      const r2 = await qemuIo(srv.uri('d0'), [`write -P 0x99 ${8 * MiB} 131072`]);
      expectOk(r2);
      writes.push({ off: 8 * MiB, len: 131072, pat: 0x99, how: 'write' });

      expect(await srv.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      const want = Buffer.alloc(SIZE);
      for (const w of writes) want.fill(w.pat, w.off, w.off + w.len);
      const img = fs.readFileSync(srv.file('d.img'));
      expect(img.length).toBe(SIZE);
      for (const w of writes) {
        expect(img.subarray(w.off, w.off + w.len).equals(want.subarray(w.off, w.off + w.len)), `0x${w.pat.toString(16)} at ${w.off}`).toBe(
          true,
        );
      }
      expect(sha256(img)).toBe(sha256(want));
    },
    60_000,
  );
});
