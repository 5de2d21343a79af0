// `aionbd serve` as a user runs it: the no-argument default, signals, and the one-line
// errors and exit codes of the Contracts (0 ok, 1 runtime failure, 2 bad usage).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { explain, run, type RunResult } from '../helpers/run.js';
import { BIN, freePort, requireBuilt, startServer, stopAllServers, type TestServer } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';

const hasNbdinfo = tool('nbdinfo');
const hasQemuIo = tool('qemu-io');
const GiB = 2 ** 30;
const O_DIRECT = fs.constants.O_DIRECT; // 0o40000 on x86-64; /proc/PID/fdinfo prints flags in octal

const dirs: string[] = [];
afterEach(async () => {
  await stopAllServers();
  for (const d of dirs.splice(0)) rmrf(d);
});
afterAll(async () => {
  await stopAllServers();
});

/** Runs `aionbd ARGS` to completion in a fresh temporary cwd. */
async function aionbd(args: string[], timeoutMs = 20_000): Promise<RunResult & { cwd: string }> {
  requireBuilt();
  const cwd = tmpDir('aionbd-cli-');
  dirs.push(cwd);
  const r = await run(process.execPath, [BIN, ...args], { cwd, timeoutMs });
  return { ...r, cwd };
}

/** stderr without pino's JSON log records: what a user reads. */
function humanLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '' && !isJsonRecord(l));
}
function isJsonRecord(line: string): boolean {
  if (!line.startsWith('{')) return false;
  try {
    return typeof JSON.parse(line) === 'object';
  } catch {
    return false;
  } // a human line that starts with '{'
}

/** Every process whose command line mentions both aionbd.js and `needle`. */
function aionbdProcesses(needle: string): number[] {
  const pids: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let cmd: string;
    try {
      cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8');
    } catch {
      continue;
    } // exited meanwhile
    if (cmd.includes('aionbd.js') && cmd.includes(needle)) pids.push(Number(e));
  }
  return pids;
}

function aioNr(): number {
  return Number(fs.readFileSync('/proc/sys/fs/aio-nr', 'utf8').trim());
}

/** The open-file flags of the fd that `pid` holds on `file`, or null when it holds none. */
function fdFlags(pid: number, file: string): number | null {
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    } // closed meanwhile
    if (target !== file) continue;
    const m = /^flags:\s+([0-7]+)$/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
    if (m?.[1] !== undefined) return parseInt(m[1], 8);
  }
  return null;
}

/**
 * Connects, reads the 8-byte NBDMAGIC greeting and hangs up: proves the server's event loop
 * is running past its start-up (so a signal test tests the signal, not start-up races).
 */
async function greeted(srv: TestServer): Promise<void> {
  const sock = srv.socketPath !== null ? net.connect(srv.socketPath) : net.connect(srv.port ?? 0, '127.0.0.1');
  try {
    const head = await new Promise<Buffer>((resolve, reject) => {
      let got = Buffer.alloc(0);
      const timer = setTimeout(() => reject(new Error('no NBD greeting within 5 s')), 5_000);
      sock.on('data', (b: Buffer) => {
        got = Buffer.concat([got, b]);
        if (got.length >= 8) {
          clearTimeout(timer);
          resolve(got.subarray(0, 8));
        }
      });
      sock.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    expect(head.toString('latin1')).toBe('NBDMAGIC');
  } finally {
    sock.destroy();
  }
}

/**
 * A failed start's stderr, when it is not a terminal: the structured record of the failure (JSON,
 * level 50, the same message and its AIONBD_* code), then its one aionbd: line, and nothing else.
 */
function expectFailedStart(r: RunResult, line: string, code?: string): void {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, explain(r)).toHaveLength(2);
  expect(JSON.parse(lines[0] ?? '') as unknown, explain(r)).toMatchObject({
    level: 50,
    msg: line.replace(/^aionbd: /, ''),
    ...(code !== undefined ? { code } : {}),
  });
  expect(lines[1]).toBe(line);
}

function expectUsageError(r: RunResult & { cwd: string }): void {
  expect(r.code, explain(r)).toBe(2);
  const lines = humanLines(r.stderr);
  expect(lines, explain(r)).toHaveLength(1);
  // commander's own errors too: every usage error reads "aionbd: ...".
  expect(lines[0]).toMatch(/^aionbd: /);
  expect(r.stderr).not.toContain('    at ');
  expect(r.stdout).toBe('');
  // Bad usage is caught before anything is created.
  expect(fs.existsSync(path.join(r.cwd, 'aionbd-data')), 'aionbd-data was created').toBe(false);
}

describe('aionbd serve with no arguments (but a free port)', () => {
  it('creates a sparse 1 GiB aionbd-data/disk0.img, prints the attach line, serves it, exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const before = aioNr();
    const rpc = path.join(tmpDir(), 'rpc.sock');
    const srv = await startServer({ rawArgs: ['--listen', `tcp://127.0.0.1:${port}`, '--rpc', rpc] });
    expect(srv.port).toBe(port);

    // The four lines, exactly as documented.
    await srv.waitForStdout(/without nbd-client: .*\n/);
    expect(srv.stdout).toBe(
      [
        `aionbd: exporting "disk0" (1G, aio bdev, block size 512) on tcp://127.0.0.1:${port}`,
        `  attach (as root, after "modprobe nbd"): nbd-client 127.0.0.1 ${port} /dev/nbd0 -N disk0 -b 512`,
        `  inspect: nbdinfo 'nbd://127.0.0.1:${port}/disk0'`,
        `  or, as root, without nbd-client: aionbd attach disk0 -s ${rpc}`,
        '',
      ].join('\n'),
    );

    const img = srv.file('aionbd-data/disk0.img');
    const st = fs.statSync(img);
    expect(st.size).toBe(GiB);
    expect(st.blocks * 512, 'allocated bytes of a fresh sparse image').toBeLessThan(1 << 20);

    // The server holds a kernel AIO context, and its image fd bypasses the page cache.
    expect(aioNr()).toBeGreaterThan(before);
    expect(fs.readFileSync(`/proc/${srv.pid}/maps`, 'utf8')).toMatch(/\/\[aio\]/);
    const flags = fdFlags(srv.pid, img);
    expect(flags, `no fd on ${img} in /proc/${srv.pid}/fd`).not.toBeNull();
    expect((flags ?? 0) & O_DIRECT, `fd flags 0${(flags ?? 0).toString(8)}`).toBe(O_DIRECT);

    if (hasNbdinfo) {
      const r = await run('nbdinfo', ['--size', `nbd://127.0.0.1:${port}/disk0`], { timeoutMs: 20_000 });
      expect(r.code, explain(r)).toBe(0);
      expect(r.stdout.trim()).toBe(String(GiB));
    }

    expect(await srv.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(fs.existsSync(`/proc/${srv.pid}`)).toBe(false);
    expect(aionbdProcesses(`tcp://127.0.0.1:${port}`)).toEqual([]);
    expect(srv.stderr).not.toContain('    at ');
    // The image stays, at its size, for the next start.
    expect(fs.statSync(img).size).toBe(GiB);
  }, 60_000);

  it('reuses an existing aionbd-data/disk0.img on the next start', async () => {
    const port = await freePort();
    const marker = Buffer.alloc(512, 0xab);
    const srv = await startServer({
      rawArgs: ['--listen', `tcp://127.0.0.1:${port}`],
      prepare: (dir) => {
        fs.mkdirSync(path.join(dir, 'aionbd-data'));
        const fd = fs.openSync(path.join(dir, 'aionbd-data', 'disk0.img'), 'w');
        fs.writeSync(fd, marker, 0, 512, 0);
        fs.ftruncateSync(fd, GiB);
        fs.closeSync(fd);
      },
    });
    expect(srv.stdout).toContain('"disk0" (1G,');
    await greeted(srv);
    if (hasQemuIo) {
      const r = await run('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0xab 0 512', '-c', 'read -P 0 512 512', srv.uri('disk0')], {
        timeoutMs: 20_000,
      });
      expect(r.code, explain(r)).toBe(0);
    }
    expect(await srv.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const fd = fs.openSync(srv.file('aionbd-data/disk0.img'), 'r');
    const head = Buffer.alloc(512);
    fs.readSync(fd, head, 0, 512, 0);
    fs.closeSync(fd);
    expect(head.equals(marker)).toBe(true);
  }, 60_000);
});

describe('signals', () => {
  it('SIGINT stops the server with exit code 0', async () => {
    const srv = await startServer({ aio: ['d.img,size=1M'] });
    expect(srv.socketPath).not.toBeNull();
    await greeted(srv);
    expect(await srv.stop('SIGINT')).toEqual({ code: 0, signal: null });
    expect(srv.stderr).toMatch(/"signal":"SIGINT".*shutting down/);
    expect(srv.stderr).not.toContain('    at ');
    expect(aionbdProcesses(srv.dir)).toEqual([]);
  }, 30_000);

  it('SIGTERM stops the server with exit code 0 and removes its unix socket', async () => {
    const srv = await startServer({ aio: ['d.img,size=1M'] });
    const sock = srv.socketPath ?? '';
    expect(fs.statSync(sock).isSocket()).toBe(true);
    await greeted(srv);
    expect(await srv.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(fs.existsSync(sock)).toBe(false);
  }, 30_000);

  // A supervisor (or a test) that waits for the "exporting" line and then stops the server
  // must get a graceful stop: the line means "ready", so the signal handlers must already be in.
  it('a signal sent the moment the "exporting" line appears still stops gracefully', async () => {
    const got: string[] = [];
    for (let i = 0; i < 10; i++) {
      const sig: NodeJS.Signals = i % 2 === 0 ? 'SIGTERM' : 'SIGINT';
      const srv = await startServer({ aio: ['d.img,size=1M'] });
      const st = await srv.stop(sig);
      got.push(`${sig}: code ${String(st.code)}, signal ${String(st.signal)}`);
      await srv.cleanup();
    }
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `${i % 2 === 0 ? 'SIGTERM' : 'SIGINT'}: code 0, signal null`));
  }, 60_000);
});

describe('bad usage: exit 2, one line, no stack trace, nothing created', () => {
  const cases: [string, string[]][] = [
    ['an unknown --aio key', ['serve', '--aio', 'x.img,size=1M,bogus=1']],
    ['an --aio key without its value', ['serve', '--aio', 'x.img,size=']],
    ['an --aio without a file name', ['serve', '--aio', ',size=1M']],
    ['a bad size suffix', ['serve', '--aio', 'x.img,size=12Q']],
    ['a listen scheme that is not tcp or unix', ['serve', '--listen', 'ftp://127.0.0.1:1']],
    ['a port out of range', ['serve', '--listen', 'tcp://127.0.0.1:99999']],
    ['an empty unix socket path', ['serve', '--listen', 'unix:']],
    ['two bdevs with the same name', ['serve', '--aio', 'a.img,name=x,size=1M', '--aio', 'b.img,name=x,size=1M']],
    ['two files with the same default name', ['serve', '--aio', 'a/d.img,size=1M', '--aio', 'b/d.img,size=1M']],
    ['--queue-depth 0', ['serve', '--queue-depth', '0']],
    ['--queue-depth that is not a number', ['serve', '--queue-depth', 'many']],
    ['an unknown --log-level', ['serve', '--log-level', 'loud']],
    ['an unknown option of serve', ['serve', '--bogus']],
    ['an unknown command', ['frobnicate']],
    // Block sizes and sizes are judged by the parser, before a file is opened or created.
    ['bs=1000, not a power of two', ['serve', '--aio', 'x.img,size=1M,bs=1000']],
    ['bs=256, below 512', ['serve', '--aio', 'x.img,size=1M,bs=256']],
    ['bs=128K, above 64K', ['serve', '--aio', 'x.img,size=1M,bs=128K']],
    ['bs=4G (wrapped to 0 in 32 bits)', ['serve', '--aio', 'x.img,size=1M,bs=4G']],
    ['bs=12G (passed a 32-bit power-of-two test)', ['serve', '--aio', 'x.img,size=1M,bs=12G']],
    ['size=0', ['serve', '--aio', 'x.img,size=0']],
    ['size=-1', ['serve', '--aio', 'x.img,size=-1']],
    ['size=100, not whole blocks', ['serve', '--aio', 'x.img,size=100']],
    ['size=6K with bs=4K, not whole blocks', ['serve', '--aio', 'x.img,size=6K,bs=4K']],
    ['size beyond 2^53 bytes', ['serve', '--aio', 'x.img,size=9P']],
    ['--queue-depth above its maximum', ['serve', '--queue-depth', '65537']],
    ['--max-payload that is not a power of two', ['serve', '--max-payload', '1000K']],
    ['--max-payload above 2G', ['serve', '--max-payload', '4G']],
    ['--handshake-timeout 0', ['serve', '--handshake-timeout', '0']],
    ['--handshake-timeout that rounds to 0 ms', ['serve', '--handshake-timeout', '0.0001']],
    ['--max-connections 0.5 (floored to 0)', ['serve', '--max-connections', '0.5']],
    ['--max-connections that is not a number', ['serve', '--max-connections', 'lots']],
    ['attach --block-size 1000', ['attach', '--block-size', '1000', '-s', 'no.sock', 'x']],
    ['attach --timeout with no digits', ['attach', '--timeout', ' ', '-s', 'no.sock', 'x']],
    // libuv would cut it to sun_path's 108 bytes and bind a socket at another path.
    ['a unix socket path longer than sun_path', ['serve', '--listen', `unix:${'s'.repeat(120)}.sock`]],
    ['an --rpc path longer than sun_path', ['serve', '--rpc', `${'r'.repeat(120)}.sock`]],
    ['rpc -t beyond a 32-bit timer', ['rpc', '-t', '1e12', '-s', 'no.sock', 'bdev_get_bdevs']],
    ['no command at all', []],
    ['an option without its argument', ['serve', '--aio']],
    ['a choice not among the allowed ones', ['serve', '--tls', 'maybe']],
    ['rpc without its method', ['rpc']],
    ['detach without its device', ['detach']],
    ['an unknown option of attach', ['attach', '--bogus', 'x']],
    // Every command's commander errors read "aionbd: ...", on one line.
    ['a misspelt command (commander suggests the right one)', ['serv']],
    ['a misspelt option of serve', ['serve', '--listn', 'unix:s.sock']],
    ['an unknown option before any command', ['--bogus']],
    ['an unknown option of rpc, before the method', ['rpc', '--bogus', 'bdev_get_bdevs']],
    ['rpc -s without its path', ['rpc', '-s']],
    ['an unknown flag of an rpc method', ['rpc', '-s', 'no.sock', 'bdev_get_bdevs', '--bogus']],
    ['rpc: a form with too many arguments', ['rpc', '-s', 'no.sock', 'bdev_get_bdevs', 'a', 'b']],
    ['rpc: log_set_level without its level', ['rpc', '-s', 'no.sock', 'log_set_level']],
    ['an unknown option of detach', ['detach', '--bogus', '/dev/nbd0']],
    ['detach with two devices', ['detach', '/dev/nbd0', '/dev/nbd1']],
    ['detach of something that is not an nbd device', ['detach', '/dev/sda']],
    ['attach with neither an export nor --aio', ['attach']],
    ['attach --connections 0', ['attach', '--connections', '0', '-s', 'no.sock', 'x']],
    ['serve with an argument it does not take', ['serve', 'extra']],
    ['help for a command that does not exist', ['help', 'bogus']],
    ['an unknown --log-format', ['serve', '--log-format', 'xml']],
    ['--run without its command', ['serve', '--run']],
    ['--pidfile without its file', ['serve', '--pidfile']],
  ];
  for (const [what, args] of cases) {
    it(what, async () => {
      expectUsageError(await aionbd(args));
    }, 30_000);
  }

  it('commander\'s own messages are ours: "aionbd: " and one line, its suggestion included', async () => {
    expect((await aionbd(['serv'])).stderr).toBe("aionbd: unknown command 'serv' (did you mean serve?)\n");
    expect((await aionbd(['serve', '--listn', 'x'])).stderr).toBe("aionbd: unknown option '--listn' (did you mean --listen?)\n");
    expect((await aionbd(['detach', 'a', 'b'])).stderr).toBe("aionbd: too many arguments for 'detach'. Expected 1 argument but got 2.\n");
    expect((await aionbd(['help', 'bogus'])).stderr).toBe(
      'aionbd: no command "bogus" to help with (commands: serve, rpc, iostat, attach, detach)\n',
    );
  }, 60_000);

  it('runtime failures of every command exit 1 with one line', async () => {
    const rpc = await aionbd(['rpc', '-s', '/nonexistent-aionbd.sock', 'bdev_get_bdevs']);
    expect(rpc.code, explain(rpc)).toBe(1);
    expect(rpc.stderr).toMatch(/^aionbd: cannot reach the JSON-RPC socket \/nonexistent-aionbd\.sock: [^\n]*\n$/);
    const attach = await aionbd(['attach', '-s', '/nonexistent-aionbd.sock', 'x']);
    expect(attach.code, explain(attach)).toBe(1);
    expect(humanLines(attach.stderr), explain(attach)).toEqual([expect.stringMatching(/^aionbd: cannot reach the JSON-RPC socket/)]);
    const detach = await aionbd(['detach', '-s', '/nonexistent-aionbd.sock', '/dev/nbd0']);
    expect(detach.code, explain(detach)).toBe(1);
    expect(detach.stderr).toMatch(/^aionbd: cannot reach the JSON-RPC socket [^\n]*\n$/);
  }, 60_000);

  it('the name clash names the bdev', async () => {
    const r = await aionbd(['serve', '--aio', 'a.img,name=x,size=1M', '--aio', 'b.img,name=x,size=1M']);
    expect(r.code, explain(r)).toBe(2);
    expect(humanLines(r.stderr).join('\n')).toContain('"x"');
    expect(fs.existsSync(path.join(r.cwd, 'a.img')) || fs.existsSync(path.join(r.cwd, 'b.img'))).toBe(false);
  }, 30_000);

  it('--help exits 0 and prints usage on stdout', async () => {
    const r = await aionbd(['serve', '--help']);
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout).toMatch(/Usage: aionbd serve/);
    expect(r.stdout).toContain('--aio');
    expect(r.stdout).toContain('--listen');
  }, 30_000);

  it('--version and -V print the package version and exit 0', async () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(path.dirname(BIN), '..', 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await aionbd([flag]);
      expect(r.code, explain(r)).toBe(0);
      expect(r.stdout).toBe(`${version}\n`);
    }
  }, 30_000);
});

describe('runtime failures: exit 1, one line, no stack trace', () => {
  it('a port already in use', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve, reject) => {
      blocker.once('error', reject);
      blocker.listen({ host: '127.0.0.1', port: 0 }, resolve);
    });
    try {
      const addr = blocker.address();
      const port = addr !== null && typeof addr === 'object' ? addr.port : 0;
      const r = await aionbd(['serve', '--listen', `tcp://127.0.0.1:${port}`]);
      expect(r.code, explain(r)).toBe(1);
      expect(humanLines(r.stderr)).toEqual([`aionbd: cannot listen on tcp://127.0.0.1:${port}: address already in use`]);
      expect(r.stderr).not.toContain('    at ');
      expect(r.stdout).toBe('');
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  }, 30_000);

  // A failed start ends with its one line and the record of that failure alone: "created sparse
  // image" or "listening" records before it would describe a file and listeners that are gone.
  describe('a start that fails after creating things', () => {
    async function withBusyPort<T>(fn: (port: number) => Promise<T>): Promise<T> {
      const blocker = net.createServer();
      await new Promise<void>((resolve, reject) => {
        blocker.once('error', reject);
        blocker.listen({ host: '127.0.0.1', port: 0 }, resolve);
      });
      try {
        const addr = blocker.address();
        return await fn(addr !== null && typeof addr === 'object' ? addr.port : 0);
      } finally {
        await new Promise<void>((resolve) => blocker.close(() => resolve()));
      }
    }

    it('prints only its failure (record and aionbd: line) and leaves no image, directory or socket behind', async () => {
      await withBusyPort(async (port) => {
        const r = await aionbd([
          'serve',
          '--listen',
          'unix:first.sock',
          '--listen',
          `tcp://127.0.0.1:${port}`,
          '--rpc',
          'r.sock',
          '--aio',
          'made/deeper/x.img,size=1M',
        ]);
        expect(r.code, explain(r)).toBe(1);
        expectFailedStart(r, `aionbd: cannot listen on tcp://127.0.0.1:${port}: address already in use`, 'AIONBD_LISTEN');
        expect(r.stdout).toBe('');
        expect(fs.readdirSync(r.cwd), 'left in the cwd').toEqual([]);
      });
    }, 30_000);

    it('the default image and aionbd-data go too; an image that was there stays', async () => {
      await withBusyPort(async (port) => {
        const r = await aionbd(['serve', '--listen', `tcp://127.0.0.1:${port}`, '--no-rpc']);
        expect(r.code, explain(r)).toBe(1);
        expectFailedStart(r, `aionbd: cannot listen on tcp://127.0.0.1:${port}: address already in use`);
        expect(fs.existsSync(path.join(r.cwd, 'aionbd-data')), 'aionbd-data was left').toBe(false);

        const cwd = tmpDir('aionbd-cli-');
        dirs.push(cwd);
        fs.writeFileSync(path.join(cwd, 'old.img'), Buffer.alloc(4096, 7));
        const r2 = await run(
          process.execPath,
          [BIN, 'serve', '--listen', `tcp://127.0.0.1:${port}`, '--no-rpc', '--aio', 'old.img', '--aio', 'new.img,size=1M'],
          { cwd, timeoutMs: 20_000 },
        );
        expect(r2.code, explain(r2)).toBe(1);
        expect(fs.readFileSync(path.join(cwd, 'old.img')).equals(Buffer.alloc(4096, 7))).toBe(true);
        expect(fs.existsSync(path.join(cwd, 'new.img')), 'new.img was left').toBe(false);
      });
    }, 30_000);

    it('with --log-level debug the start-up records come first, and the aionbd: line is still last', async () => {
      await withBusyPort(async (port) => {
        const r = await aionbd([
          'serve',
          '--listen',
          `tcp://127.0.0.1:${port}`,
          '--no-rpc',
          '--aio',
          'x.img,size=1M',
          '--log-level',
          'debug',
        ]);
        expect(r.code, explain(r)).toBe(1);
        const lines = r.stderr.split('\n').filter((l) => l !== '');
        expect(lines.at(-1)).toBe(`aionbd: cannot listen on tcp://127.0.0.1:${port}: address already in use`);
        expect(lines.slice(0, -1).every(isJsonRecord), explain(r)).toBe(true);
        expect(r.stderr).toContain('created sparse image');
      });
    }, 30_000);
  });

  // Only where attach must fail (no root, or no nbd driver): elsewhere it would attach for real.
  const attachFails = process.getuid?.() !== 0 || !fs.existsSync('/sys/module/nbd');
  it.runIf(attachFails)(
    'attach --aio that cannot attach leaves no image and prints one line',
    async () => {
      const r = await aionbd(['attach', '--aio', 'sub/x.img,size=1M', '--log-level', 'info']);
      expect(r.code, explain(r)).toBe(1);
      expect(humanLines(r.stderr), explain(r)).toEqual([expect.stringMatching(/^aionbd: .*(nbd driver|needs root)/)]);
      expect(fs.readdirSync(r.cwd), 'left in the cwd').toEqual([]);
    },
    30_000,
  );

  it('a unix socket path already held by a live listener', async () => {
    const dir = tmpDir('aionbd-cli-sock-');
    dirs.push(dir);
    const sock = path.join(dir, 'busy.sock');
    const blocker = net.createServer();
    await new Promise<void>((resolve, reject) => {
      blocker.once('error', reject);
      blocker.listen(sock, resolve);
    });
    try {
      const r = await aionbd(['serve', '--aio', 'd.img,size=1M', '--listen', `unix:${sock}`]);
      expect(r.code, explain(r)).toBe(1);
      expect(humanLines(r.stderr)).toEqual([`aionbd: cannot listen on unix:${sock}: address already in use`]);
      expect(r.stderr).not.toContain('    at ');
      // The other listener's socket is not ours to delete.
      expect(fs.statSync(sock).isSocket()).toBe(true);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  }, 30_000);

  // Each fails before anything is created: size=1M would otherwise leave x.img behind.
  describe('a socket path where no socket can be bound', () => {
    const cases: [string, () => string[], string][] = [
      [
        '--listen in a missing directory',
        () => ['--listen', 'unix:/nonexistent-aionbd/dir/s.sock', '--no-rpc'],
        'aionbd: cannot listen on unix:/nonexistent-aionbd/dir/s.sock: directory /nonexistent-aionbd/dir does not exist',
      ],
      [
        '--rpc in a missing directory',
        () => ['--listen', 'unix:s.sock', '--rpc', '/nonexistent-aionbd/dir/r.sock'],
        'aionbd: cannot listen on unix:/nonexistent-aionbd/dir/r.sock (JSON-RPC): directory /nonexistent-aionbd/dir does not exist',
      ],
      [
        '--listen under a regular file',
        () => ['--listen', 'unix:plain/s.sock', '--no-rpc'],
        'aionbd: cannot listen on unix:plain/s.sock: plain is not a directory',
      ],
      [
        '--listen at a regular file',
        () => ['--listen', 'unix:plain', '--no-rpc'],
        'aionbd: cannot listen on unix:plain: plain exists and is a regular file, not a socket (left alone)',
      ],
      ['--rpc at a regular file', () => ['--listen', 'unix:s.sock', '--rpc', 'plain'], ''],
      [
        '--listen at a symbolic link',
        () => ['--listen', 'unix:link', '--no-rpc'],
        'aionbd: cannot listen on unix:link: link exists and is a symbolic link, not a socket (left alone)',
      ],
    ];
    for (const [what, args, line] of cases) {
      it(what, async () => {
        requireBuilt();
        const cwd = tmpDir('aionbd-cli-');
        dirs.push(cwd);
        fs.writeFileSync(path.join(cwd, 'plain'), 'keep me\n');
        fs.symlinkSync(path.join(cwd, 'plain'), path.join(cwd, 'link'));
        const r = await run(process.execPath, [BIN, 'serve', '--aio', 'x.img,size=1M', ...args()], { cwd, timeoutMs: 20_000 });
        expect(r.code, explain(r)).toBe(1);
        const want =
          line !== ''
            ? line
            : `aionbd: cannot listen on unix:${path.join(cwd, 'plain')} (JSON-RPC): ${path.join(cwd, 'plain')} exists and is a regular file, not a socket (left alone)`;
        expectFailedStart(r, want, 'AIONBD_LISTEN');
        expect(r.stdout).toBe('');
        expect(fs.readFileSync(path.join(cwd, 'plain'), 'utf8')).toBe('keep me\n');
        expect(fs.lstatSync(path.join(cwd, 'link')).isSymbolicLink()).toBe(true);
        expect(fs.existsSync(path.join(cwd, 'x.img')), 'x.img was created').toBe(false);
        expect(fs.existsSync(path.join(cwd, 's.sock')), 's.sock was left').toBe(false);
      }, 30_000);
    }
  });

  it('rpc load_config with no JSON on stdin is one line, not a SyntaxError stack', async () => {
    requireBuilt();
    for (const input of ['', '{"subsystems": [']) {
      const r = await run(process.execPath, [BIN, 'rpc', '-s', '/nonexistent-aionbd.sock', 'load_config'], { input, timeoutMs: 20_000 });
      expect(r.code, explain(r)).toBe(1);
      expect(r.stderr, explain(r)).toMatch(/^aionbd: the config on stdin is not valid JSON: [^\n]*\n$/);
      expect(r.stdout).toBe('');
    }
  }, 30_000);

  it('a missing file without size= names "size"', async () => {
    const r = await aionbd(['serve', '--listen', 'unix:s.sock', '--aio', 'missing.img']);
    expect(r.code, explain(r)).toBe(1);
    const lines = humanLines(r.stderr);
    expect(lines, explain(r)).toHaveLength(1);
    expect(lines[0]).toMatch(/^aionbd: /);
    expect(lines[0]).toContain('missing.img');
    expect(lines[0]).toContain('size');
    expect(r.stderr).not.toContain('    at ');
    expect(fs.existsSync(path.join(r.cwd, 'missing.img'))).toBe(false);
  }, 30_000);
});
