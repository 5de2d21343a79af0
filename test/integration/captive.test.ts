// Process conventions of nbdkit: captive mode (--run), --pidfile and --exit-with-parent, with real
// clients (nbdcopy, nbdinfo) and real processes (sh, signals, re-parenting).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { explain, run } from '../helpers/run.js';
import { BIN, requireBuilt, startServer, stopAllServers } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';

const MiB = 2 ** 20;
const dirs: string[] = [];
afterEach(async () => {
  await stopAllServers();
  for (const d of dirs.splice(0)) rmrf(d);
});
function dir(): string {
  const d = tmpDir('aionbd-captive-');
  dirs.push(d);
  return d;
}

function aionbd(cwd: string, args: string[], timeoutMs = 30_000): ReturnType<typeof run> {
  requireBuilt();
  return run(process.execPath, [BIN, ...args], { cwd, timeoutMs });
}

/** Running (a zombie waiting for whoever adopted it to reap it counts as gone). */
function alive(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Polls (every 50 ms, at most `ms`) until `cond` holds; returns whether it did. */
async function within(ms: number, cond: () => boolean): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

describe('--run: captive mode', () => {
  it.skipIf(!tool('nbdcopy'))(
    'nbdcopy "$uri" copies the export to a file, byte for byte, over a private socket that is removed after',
    async () => {
      const cwd = dir();
      const data = crypto.randomBytes(8 * MiB);
      fs.writeFileSync(path.join(cwd, 'a.img'), data);
      const r = await aionbd(cwd, ['serve', '--aio', 'a.img', '--run', 'echo "$socket" > socket.txt; nbdcopy "$uri" b.img']);
      expect(r.code, explain(r)).toBe(0);
      expect(fs.readFileSync(path.join(cwd, 'b.img')).equals(data)).toBe(true);
      // Nothing of ours on stdout: it is the command's.
      expect(r.stdout).toBe('');
      const socket = fs.readFileSync(path.join(cwd, 'socket.txt'), 'utf8').trim();
      expect(path.basename(socket)).toBe('socket');
      expect(fs.existsSync(path.dirname(socket)), `${path.dirname(socket)} was left`).toBe(false);
    },
    60_000,
  );

  it("exits with the command's status, or 128 + the signal that killed it", async () => {
    const cwd = dir();
    const three = await aionbd(cwd, ['serve', '--aio', 'a.img,size=1M', '--run', 'exit 3']);
    expect(three.code, explain(three)).toBe(3);
    const killed = await aionbd(cwd, ['serve', '--aio', 'a.img,size=1M', '--run', 'kill -TERM $$']);
    expect(killed.code, explain(killed)).toBe(143);
    expect(killed.stderr).toContain('the --run command was killed by a signal');
  }, 60_000);

  it("gives nbdkit's shell variables, quoted, and local to the command unless exported", async () => {
    const cwd = dir();
    fs.mkdirSync(path.join(cwd, 'with space'));
    const sock = path.join(cwd, 'with space', "it's.sock");
    const r = await aionbd(cwd, [
      'serve',
      '--aio',
      'a.img,name=disk.0,size=1M',
      '--listen',
      `unix:${sock}`,
      '--no-rpc',
      '--run',
      'printf "%s\\n" "$uri" "$nbd" "$socket" "$unixsocket" "$export" "$exportname" "[$port]" "[$tls]"; [ -S "$socket" ] && echo is-a-socket; env | grep -c "^uri=" || true',
    ]);
    expect(r.code, explain(r)).toBe(0);
    const uri = `nbd+unix:///disk.0?socket=${sock}`;
    expect(r.stdout).toBe([uri, uri, sock, sock, 'disk.0', 'disk.0', '[]', '[]', 'is-a-socket', '0', ''].join('\n'));

    const tcp = await aionbd(cwd, [
      'serve',
      '--aio',
      'a.img,name=t,size=1M',
      '--listen',
      'tcp://127.0.0.1:0',
      '--no-rpc',
      '--run',
      'export uri; echo "$port"; sh -c \'echo "$uri"\'',
    ]);
    expect(tcp.code, explain(tcp)).toBe(0);
    const [port, exported] = tcp.stdout.trim().split('\n');
    expect(Number(port)).toBeGreaterThan(0);
    expect(exported).toBe(`nbd://127.0.0.1:${port ?? ''}/t`);
  }, 60_000);

  it.skipIf(!tool('nbdinfo'))(
    'serves while the command runs, with --listen a client of our own choosing can use',
    async () => {
      const cwd = dir();
      const r = await aionbd(cwd, [
        'serve',
        '--aio',
        'a.img,size=3M',
        '--listen',
        'unix:n.sock',
        '--no-rpc',
        '--run',
        'nbdinfo --size "nbd+unix:///a?socket=n.sock"',
      ]);
      expect(r.code, explain(r)).toBe(0);
      expect(r.stdout.trim()).toBe(String(3 * MiB));
      expect(fs.existsSync(path.join(cwd, 'n.sock'))).toBe(false);
    },
    60_000,
  );

  it('a signal to aionbd stops the command (and what its shell started) first, then the server', async () => {
    const cwd = dir();
    requireBuilt();
    // `sleep; true`: the shell cannot exec sleep, so the signal must reach past the shell.
    const p = run(
      process.execPath,
      [BIN, 'serve', '--aio', 'a.img,size=1M', '--pidfile', 'p.pid', '--run', 'echo $$ > sh.pid; sleep 30; true'],
      { cwd, timeoutMs: 30_000 },
    );
    // The shell creates sh.pid before echo writes to it: an empty file would read as pid 0, whose
    // children are init and kthreadd.
    const pidIn = (f: string): number => {
      try {
        return Number(fs.readFileSync(path.join(cwd, f), 'utf8').trim()) || 0;
      } catch {
        return 0;
      }
    };
    expect(await within(15_000, () => pidIn('sh.pid') > 0 && pidIn('p.pid') > 0)).toBe(true);
    const shPid = pidIn('sh.pid');
    const sleeps = (): number[] =>
      fs
        .readdirSync('/proc')
        .filter((e) => /^\d+$/.test(e))
        .filter((e) => {
          try {
            return fs.readFileSync(`/proc/${e}/stat`, 'utf8').split(') ')[1]?.split(' ')[1] === String(shPid);
          } catch {
            return false;
          }
        })
        .map(Number);
    expect(await within(5_000, () => sleeps().length === 1)).toBe(true);
    const [sleepPid] = sleeps();
    process.kill(Number(fs.readFileSync(path.join(cwd, 'p.pid'), 'utf8')), 'SIGTERM');
    const r = await p;
    expect(r.code, explain(r)).toBe(143);
    expect(await within(5_000, () => !alive(sleepPid ?? 0)), "the command's sleep outlived it").toBe(true);
    expect(fs.existsSync(path.join(cwd, 'p.pid')), 'the pid file was left').toBe(false);
  }, 60_000);

  it('--run with --stdio is bad usage (exit 2)', async () => {
    const r = await aionbd(dir(), ['serve', '--stdio', '--run', 'true']);
    expect(r.code, explain(r)).toBe(2);
    expect(r.stderr).toMatch(/^aionbd: --run and --stdio cannot go together/m);
  }, 30_000);
});

describe('--pidfile and --exit-with-parent', () => {
  it('--pidfile holds the pid once the server listens, and is removed when it stops', async () => {
    const srv = await startServer({ aio: ['d.img,size=1M'], args: ['--pidfile', 'aionbd.pid', '--no-rpc'] });
    expect(fs.readFileSync(srv.file('aionbd.pid'), 'utf8')).toBe(`${srv.pid}\n`);
    expect(await srv.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(fs.existsSync(srv.file('aionbd.pid'))).toBe(false);
  }, 30_000);

  it('--pidfile in a directory that does not exist fails the start before anything is made', async () => {
    const cwd = dir();
    const r = await aionbd(cwd, [
      'serve',
      '--aio',
      'd.img,size=1M',
      '--listen',
      'unix:s.sock',
      '--no-rpc',
      '--pidfile',
      'no/such/dir/p.pid',
    ]);
    expect(r.code, explain(r)).toBe(1);
    expect(r.stderr).toMatch(/^aionbd: cannot write the pid file no\/such\/dir\/p\.pid: no such file or directory$/m);
    expect(fs.readdirSync(cwd)).toEqual([]);
  }, 30_000);

  it('--exit-with-parent: the server stops cleanly soon after the process that started it exits', async () => {
    const cwd = dir();
    requireBuilt();
    // The parent: a shell that starts aionbd in the background, waits (bounded) for its pid file, and exits.
    const script = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} serve --aio d.img,size=1M --listen unix:s.sock --no-rpc --pidfile p.pid --exit-with-parent 2> err.log &
i=0; while [ ! -e p.pid ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; cp p.pid seen.pid`;
    const r = await run('sh', ['-c', script], { cwd, timeoutMs: 30_000 });
    expect(r.code, explain(r)).toBe(0);
    const pid = Number(fs.readFileSync(path.join(cwd, 'seen.pid'), 'utf8'));
    expect(pid).toBeGreaterThan(0);
    expect(await within(10_000, () => !alive(pid)), 'aionbd outlived its parent').toBe(true);
    const err = fs.readFileSync(path.join(cwd, 'err.log'), 'utf8');
    expect(err).toContain('the parent process exited (--exit-with-parent)');
    expect(err).toContain('shutting down');
    expect(fs.existsSync(path.join(cwd, 'p.pid'))).toBe(false);
    expect(fs.existsSync(path.join(cwd, 's.sock'))).toBe(false);
  }, 60_000);
});
