// Other ways to start and limit a server: --stdio (libnbd's connect_command), systemd socket
// activation (nbdinfo's [ CMD ] form), TLS from the command line, and the protocol limits.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../helpers/run.js';
import { BIN, requireBuilt, startServer, stopAllServers } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { nbdshEnv, nbdshTool, tool } from '../helpers/tools.js';
import { RawClient } from '../helpers/wire.js';

const MiB = 1 << 20;

describe('start modes and limits', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    await stopAllServers();
    for (const d of dirs.splice(0)) rmrf(d);
  });
  const dir = (): string => {
    const d = tmpDir();
    dirs.push(d);
    return d;
  };

  it.skipIf(!nbdshTool())(
    '--stdio serves one connection for nbd_connect_command, then exits',
    async () => {
      requireBuilt();
      const img = path.join(dir(), 's.img');
      const script = `h.connect_command(${JSON.stringify([process.execPath, BIN, 'serve', '--stdio', '--aio', `${img},name=s,size=16M`, '--log-level', 'warn'])})
h.pwrite(b'stdio' * 100, 8192)
assert h.pread(500, 8192) == b'stdio' * 100
print(h.get_size())
h.shutdown()`;
      const r = await run('nbdsh', ['-c', script], { timeoutMs: 30_000, env: nbdshEnv() ?? process.env });
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe(String(16 * MiB));
    },
    60_000,
  );

  it.skipIf(!tool('nbdinfo'))(
    'systemd socket activation: nbdinfo [ aionbd serve ... ]',
    async () => {
      requireBuilt();
      const img = path.join(dir(), 'a.img');
      const r = await run(
        'nbdinfo',
        ['--size', '--', '[', process.execPath, BIN, 'serve', '--no-rpc', '--aio', `${img},name=a,size=24M`, '--log-level', 'warn', ']'],
        { timeoutMs: 30_000 },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(String(24 * MiB));
      expect(r.stderr).toMatch(/exporting "a" .* on inherited fd 3/);
    },
    60_000,
  );

  it.skipIf(!tool('nbdinfo'))(
    '--max-payload, --max-connections and descriptions reach the client',
    async () => {
      const srv = await startServer({
        aio: ['d.img,name=d0,size=16M,description=the test disk'],
        args: ['--max-payload', '1M', '--max-connections', '2', '--no-rpc'],
      });
      const info = await run('nbdinfo', ['--json', srv.uri('d0')], { timeoutMs: 20_000 });
      const j = JSON.parse(info.stdout) as { exports: { block_size_maximum: number; description: string }[] };
      expect(j.exports[0]?.block_size_maximum).toBe(MiB);
      expect(j.exports[0]?.description).toBe('the test disk');
      const a = await RawClient.connect(srv.socketPath as string);
      const b = await RawClient.connect(srv.socketPath as string);
      await a.read(18);
      await b.read(18);
      const c = await RawClient.connect(srv.socketPath as string);
      expect(await c.waitClosed(3000)).toBe(true); // the third is refused
      a.close();
      b.close();
      c.close();
    },
    60_000,
  );

  it('--handshake-timeout drops a client that stalls', async () => {
    const srv = await startServer({ aio: ['d.img,name=d0,size=16M'], args: ['--handshake-timeout', '0.5', '--no-rpc'] });
    const c = await RawClient.connect(srv.socketPath as string);
    await c.read(18);
    const t0 = Date.now();
    expect(await c.waitClosed(5000)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3000);
  }, 30_000);

  it('TLS flags: unreadable credentials are a usage error (exit 2, one line)', async () => {
    requireBuilt();
    const r = await run(
      process.execPath,
      [BIN, 'serve', '--no-rpc', '--tls-cert', '/nonexistent/c.pem', '--tls-key', '/nonexistent/k.pem'],
      { timeoutMs: 20_000, cwd: dir() },
    );
    expect(r.code).toBe(2);
    const [record, line, ...more] = r.stderr.trim().split('\n');
    expect(JSON.parse(record ?? '') as unknown).toMatchObject({ level: 50, code: 'AIONBD_USAGE', exitCode: 2 });
    expect([line, ...more]).toEqual(['aionbd: cannot read the TLS certificate /nonexistent/c.pem: ENOENT']);
    const r2 = await run(process.execPath, [BIN, 'serve', '--no-rpc', '--tls', 'require'], { timeoutMs: 20_000, cwd: dir() });
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/needs --tls-cert and --tls-key, or --tls-psk/);
  }, 30_000);
});
