// Thousands of idle connections cost little and give their memory back: against the CLI server
// as a child process, 1000 raw unix-socket clients finish the handshake and stay idle; the
// server's RSS and fds are read from /proc before, while they are open, and after they close.
// The start-up log states the open-file limit the server runs under and the connection limit
// sized from it.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { maxConnectionsFor } from '../../src/nbd/admission.js';
import { requireBuilt, startServer, stopAllServers } from '../helpers/server.js';
import { RawClient, handshakeGo } from '../helpers/wire.js';

const KiB = 1024;
const MiB = 1024 * 1024;
const CONNECTIONS = 1000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * KiB;
}

const fds = (pid: number): number => fs.readdirSync(`/proc/${pid}/fd`).length;

/** Polls until `cond` holds or `ms` pass; returns whether it held. */
async function within(ms: number, cond: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

describe('idle connections (CLI server)', () => {
  requireBuilt();
  const clients: RawClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await stopAllServers();
  });

  it(`${CONNECTIONS} idle connections past NBD_OPT_GO: one fd and under 32 KiB of RSS each, and the RSS comes back after they close`, async () => {
    const srv = await startServer({ aio: ['d.img,name=d0,size=16M'], args: ['--no-rpc', '--max-connections', String(CONNECTIONS + 8)] });
    const path = srv.socketPath as string;
    // A first connection runs the code paths every later one shares; it is not counted.
    const first = await RawClient.connect(path);
    clients.push(first);
    await handshakeGo(first, 'd0');
    await sleep(500);
    const rss0 = rss(srv.pid);
    const fds0 = fds(srv.pid);

    for (let open = 0; open < CONNECTIONS; open += 100) {
      const batch = await Promise.all(Array.from({ length: 100 }, () => RawClient.connect(path)));
      clients.push(...batch);
      await Promise.all(batch.map((c) => handshakeGo(c, 'd0')));
    }
    // Every socket is the server's once it has answered the GO; what follows is idle time.
    await sleep(500);
    const rss1 = rss(srv.pid);
    const fds1 = fds(srv.pid);
    const perConn = (rss1 - rss0) / CONNECTIONS;
    expect(fds1 - fds0).toBeGreaterThanOrEqual(CONNECTIONS);
    expect(fds1 - fds0).toBeLessThanOrEqual(CONNECTIONS + 8); // one fd per connection, not two
    expect(perConn).toBeLessThan(32 * KiB);

    for (const c of clients.splice(1)) c.close();
    expect(await within(10_000, () => fds(srv.pid) <= fds0)).toBe(true);
    // The heap the connections grew goes back within seconds of the last close.
    let rss2 = rss(srv.pid);
    await within(12_000, () => {
      rss2 = rss(srv.pid);
      return rss2 - rss0 < 4 * MiB;
    });
    console.log(
      `${CONNECTIONS} idle connections: ${(perConn / KiB).toFixed(1)} KiB RSS and ${((fds1 - fds0) / CONNECTIONS).toFixed(2)} fds each; ` +
        `RSS ${(rss0 / MiB).toFixed(1)} -> ${(rss1 / MiB).toFixed(1)} -> ${(rss2 / MiB).toFixed(1)} MiB after they closed`,
    );
    expect(rss2 - rss0).toBeLessThan(4 * MiB);
  }, 60_000);

  it('the start-up log states the open-file limit (raised to the hard limit) and the connection limit sized from it', async () => {
    const srv = await startServer({ aio: ['d.img,name=d0,size=1M'], args: ['--no-rpc'], wrapper: ['prlimit', '--nofile=1024:4096'] });
    const limits = /^Max open files\s+(\d+)\s+(\d+)/m.exec(fs.readFileSync(`/proc/${srv.pid}/limits`, 'utf8'));
    expect(limits?.slice(1, 3)).toEqual(['4096', '4096']);
    const line = srv.stderr.split('\n').find((l) => l.includes('"limits"'));
    expect(line).toBeDefined();
    const rec = JSON.parse(line as string) as { level: number; msg: string; limits: Record<string, number> };
    expect(rec.level).toBe(30); // info
    expect(rec.limits).toMatchObject({
      openFiles: 4096,
      openFilesHard: 4096,
      maxConnections: maxConnectionsFor(4096),
      maxConnectionsPerClient: 256,
    });
    expect(rec.msg).toBe(
      `limits: 4096 open files (hard limit 4096), ${maxConnectionsFor(4096)} connections (256 per TCP client address), ` +
        '128 requests in flight per connection, memory budget 256M',
    );
  }, 30_000);
});
