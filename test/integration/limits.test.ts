// Connection bounds an operator can set: connections per TCP client address, the server-wide
// bound (whose refusal says why), and an idle timeout in transmission that spares connections
// with a request in flight. Raw clients on loopback; 127.0.0.2 stands for another host.
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startInProcess } from '../helpers/inproc.js';
import { startServer, stopAllServers } from '../helpers/server.js';
import { handshakeGo, RawClient, readSimpleReply, request } from '../helpers/wire.js';
import { startTarget, type RpcTarget } from '../rpc/target.js';

const READ = 0,
  FLUSH = 3,
  SIMPLE_MAGIC = 0x67446698;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A handshake and a 4 KiB READ on a fresh connection. */
async function readOnce(c: RawClient, name: string, cookie = 7n): Promise<void> {
  await handshakeGo(c, name);
  c.write(request(READ, { cookie, offset: 0, length: 4096 }));
  expect(await readSimpleReply(c)).toEqual({ magic: SIMPLE_MAGIC, error: 0, cookie });
  expect((await c.read(4096)).length).toBe(4096);
}

/** True when the server hangs up without even a greeting. */
async function refusedAtOnce(c: RawClient): Promise<boolean> {
  return (await c.waitClosed(3000)) && c.buffered === 0;
}

describe('connection limits', () => {
  const clients: RawClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await stopAllServers();
  });

  it('--max-connections-per-client: one address is refused at its limit, another address is still served', async () => {
    const srv = await startServer({
      transport: 'tcp',
      aio: ['d.img,name=d0,size=1M'],
      args: ['--max-connections-per-client', '4', '--no-rpc'],
    });
    const port = srv.port as number;
    for (let i = 0; i < 4; i++) {
      const c = await RawClient.connectTcp('127.0.0.1', port, '127.0.0.1');
      clients.push(c);
      await handshakeGo(c, 'd0'); // in transmission, then idle
    }
    const fifth = await RawClient.connectTcp('127.0.0.1', port, '127.0.0.1');
    clients.push(fifth);
    expect(await refusedAtOnce(fifth)).toBe(true);
    // Another client address: a full handshake and a READ.
    const other = await RawClient.connectTcp('127.0.0.1', port, '127.0.0.2');
    clients.push(other);
    await readOnce(other, 'd0');
    expect(srv.stderr).toMatch(
      /refusing a connection: 127\.0\.0\.1 has 4 connections open, the per-client limit \(--max-connections-per-client 4\)/,
    );

    // A slot given back is a slot to take again (bounded wait for the server to notice).
    (clients[0] as RawClient).close();
    let again: RawClient | null = null;
    for (let i = 0; i < 20 && again === null; i++) {
      await sleep(100);
      const c = await RawClient.connectTcp('127.0.0.1', port, '127.0.0.1');
      clients.push(c);
      try {
        await readOnce(c, 'd0');
        again = c;
      } catch {
        /* refused: not yet noticed */
      }
    }
    expect(again).not.toBeNull();
  });

  it('by default one address holds at most 256 connections, idle after the handshake, and others still get in', async () => {
    const srv = await startServer({ transport: 'tcp', aio: ['d.img,name=d0,size=1M'], args: ['--no-rpc'] });
    const port = srv.port as number;
    // 256 handshakes, 32 at a time (bounded in count and, per client, in time).
    for (let batch = 0; batch < 8; batch++) {
      const opened = await Promise.all(Array.from({ length: 32 }, () => RawClient.connectTcp('127.0.0.1', port, '127.0.0.1')));
      clients.push(...opened);
      await Promise.all(opened.map((c) => handshakeGo(c, 'd0')));
    }
    const over = await RawClient.connectTcp('127.0.0.1', port, '127.0.0.1');
    clients.push(over);
    expect(await refusedAtOnce(over)).toBe(true);
    const other = await RawClient.connectTcp('127.0.0.1', port, '127.0.0.2');
    clients.push(other);
    await readOnce(other, 'd0');
    expect(srv.stderr).toMatch(/127\.0\.0\.1 has 256 connections open, the per-client limit \(--max-connections-per-client 256\)/);
  });

  it('--max-connections: the refusal log says the server-wide limit was reached', async () => {
    const srv = await startServer({ transport: 'tcp', aio: ['d.img,name=d0,size=1M'], args: ['--max-connections', '2', '--no-rpc'] });
    const port = srv.port as number;
    for (const from of ['127.0.0.1', '127.0.0.2']) {
      const c = await RawClient.connectTcp('127.0.0.1', port, from);
      clients.push(c);
      await handshakeGo(c, 'd0');
    }
    const third = await RawClient.connectTcp('127.0.0.1', port, '127.0.0.3');
    clients.push(third);
    expect(await refusedAtOnce(third)).toBe(true);
    expect(srv.stderr).toMatch(/refusing a connection: 2 connections are open, the server-wide limit \(--max-connections 2\)/);
  });

  it('rejects limits that are not numbers at start (exit 2, one line)', async () => {
    for (const bad of [
      ['--max-connections-per-client', '0'],
      ['--idle-timeout', '-1'],
      ['--idle-timeout', 'soon'],
    ]) {
      const srv = startServer({ transport: 'tcp', aio: ['d.img,name=d0,size=1M'], args: [...bad, '--no-rpc'], timeoutMs: 10_000 });
      await expect(srv).rejects.toThrow(/exited \(code 2/);
    }
  });
});

describe('--idle-timeout', () => {
  let t: RpcTarget;
  afterAll(async () => {
    await t.cleanup();
  });

  it('closes an idle connection after the time, not one with a request in flight, and not a busy one', async () => {
    t = await startTarget({ args: ['--idle-timeout', '1'] });
    await t.ok('bdev_malloc_create', '{"name": "m0", "block_size": 512, "num_blocks": 2048}');
    // Reads take 2.5 s: longer than the idle timeout.
    await t.ok(
      'bdev_delay_create',
      JSON.stringify({
        name: 'slow',
        base_bdev_name: 'm0',
        avg_read_latency: 2_500_000,
        p99_read_latency: 2_500_000,
        avg_write_latency: 0,
        p99_write_latency: 0,
      }),
    );
    await t.ok('nbd_export_add', 'slow');
    await t.ok('bdev_malloc_create', '{"name": "m1", "block_size": 512, "num_blocks": 2048}');
    await t.ok('nbd_export_add', 'm1');

    const idle = await RawClient.connect(t.nbdSock);
    const inFlight = await RawClient.connect(t.nbdSock);
    const busy = await RawClient.connect(t.nbdSock);
    try {
      await handshakeGo(idle, 'm1');
      await handshakeGo(inFlight, 'slow');
      await handshakeGo(busy, 'm1');
      const start = Date.now();
      inFlight.write(request(READ, { cookie: 1n, offset: 0, length: 4096 }));
      // busy: a FLUSH every 300 ms, well inside the timeout.
      const busyLoop = (async () => {
        for (let i = 0; i < 10; i++) {
          busy.write(request(FLUSH, { cookie: BigInt(100 + i) }));
          expect((await readSimpleReply(busy)).error).toBe(0);
          await sleep(300);
        }
      })();

      expect(await idle.waitClosed(4000)).toBe(true);
      const idleClosedAfter = Date.now() - start;
      expect(idleClosedAfter).toBeGreaterThanOrEqual(900);
      expect(idleClosedAfter).toBeLessThan(2400);

      // The READ in flight is answered at ~2.5 s, on a connection that stayed open.
      expect(await readSimpleReply(inFlight, 5000)).toEqual({ magic: SIMPLE_MAGIC, error: 0, cookie: 1n });
      expect((await inFlight.read(4096)).length).toBe(4096);
      const answeredAt = Date.now() - start;
      expect(answeredAt).toBeGreaterThanOrEqual(2400);
      // Then it is idle: closed a timeout later.
      expect(await inFlight.waitClosed(4000)).toBe(true);
      expect(Date.now() - start - answeredAt).toBeGreaterThanOrEqual(800);

      await busyLoop;
      expect(busy.closed).toBe(false);
      expect(t.stderr).toMatch(/connection idle for the idle timeout; closing it/);
    } finally {
      idle.close();
      inFlight.close();
      busy.close();
    }
  }, 30_000);
});

describe('--idle-timeout and kernel attach', () => {
  it('spares serveDirect connections (the kernel holds them idle while a device is attached)', async () => {
    const srv = await startInProcess([{ name: 'd0', size: 1 << 20 }], { idleTimeoutMs: 300 });
    const pairPath = path.join(srv.dir, 'pair.sock');
    const pairServer = net.createServer((s) => {
      void srv.server.serveDirect(s, 'd0');
    });
    await new Promise<void>((resolve) => pairServer.listen(pairPath, resolve));
    const direct = await RawClient.connect(pairPath);
    const negotiated = await RawClient.connect(srv.socketPath);
    try {
      await handshakeGo(negotiated, 'd0');
      expect(await negotiated.waitClosed(2000)).toBe(true);
      await sleep(700); // well past the timeout for the direct one too
      expect(direct.closed).toBe(false);
      direct.write(request(READ, { cookie: 3n, offset: 0, length: 512 }));
      expect(await readSimpleReply(direct)).toEqual({ magic: SIMPLE_MAGIC, error: 0, cookie: 3n });
      expect((await direct.read(512)).length).toBe(512);
    } finally {
      direct.close();
      negotiated.close();
      await new Promise<void>((resolve) => pairServer.close(() => resolve()));
      await srv.close();
    }
  });
});
