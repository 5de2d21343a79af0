// The transmission's two transports: native socket I/O (plain TCP and unix sockets) and Node
// streams (TLS, stdio, any Duplex). Same requests in, same bytes out; the native one's own
// paths: taking over bytes the net.Socket already read, WRITE payloads read in place, half-close.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PassThrough, Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAioBdev } from '../../src/modules/aio/aio.js';
import type { Bdev } from '../../src/bdev/bdev.js';
import { bufferPool } from '../../src/bdev/buffers.js';
import { silentLogger } from '../../src/log.js';
import { Export } from '../../src/nbd/export.js';
import { ReplyStyle } from '../../src/nbd/replies.js';
import { SLOT_IDLE_MS } from '../../src/nbd/slot_trim.js';
import { Transmission } from '../../src/nbd/transmission.js';
import { aliveAfterGc } from '../helpers/gc.js';
import { RawClient, request, readSimpleReply } from '../helpers/wire.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';

const MiB = 1 << 20;
const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3 };
const SIZE = 64 * MiB;

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed * 7 + (i >> 11)) & 0xff;
  return b;
}

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('transmission transports', () => {
  let dir: string;
  let bdev: Bdev;
  let x: Export;
  let listener: net.Server;
  let sockPath: string;
  /** The server side of the next accepted connection. */
  let accepted: ((s: net.Socket) => void) | null = null;

  beforeAll(async () => {
    dir = tmpDir();
    bdev = createAioBdev({ filename: path.join(dir, 'd.img'), name: 'd', size: SIZE, log: silentLogger() });
    x = new Export(bdev);
    sockPath = path.join(dir, 's.sock');
    listener = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => {
      accepted?.(s);
    });
    await new Promise<void>((r) => listener.listen(sockPath, () => r()));
  });
  afterAll(async () => {
    listener.close();
    await bdev.close();
    rmrf(dir);
  });

  function serve(sock: Duplex, leftover: Buffer | null = null, ownsSocket = false): Transmission {
    return new Transmission(
      sock,
      x,
      {
        maxPayload: 32 * MiB,
        depth: 16,
        pool: bufferPool(),
        log: silentLogger(),
        style: ReplyStyle.Simple,
        metaContexts: [],
        closing: () => false,
        ownsSocket,
      },
      leftover,
    );
  }

  /** Replies to `n` 4 KiB READs in any order, by cookie. */
  async function readReplies(client: RawClient, n: number): Promise<Map<bigint, Buffer>> {
    const got = new Map<bigint, Buffer>();
    for (let i = 0; i < n; i++) {
      const r = await readSimpleReply(client, 10_000);
      expect(r.error).toBe(0);
      got.set(r.cookie, await client.read(4096));
    }
    return got;
  }

  const fdCount = (): number => fs.readdirSync('/proc/self/fd').length;

  async function connect(): Promise<{ client: RawClient; server: net.Socket }> {
    const got = new Promise<net.Socket>((r) => {
      accepted = r;
    });
    const client = await RawClient.connect(sockPath);
    const server = await got;
    accepted = null; // its promise holds the socket: no test should keep a connection alive by accident
    return { client, server };
  }

  /** One request at a time, so the reply stream is deterministic; returns every byte received. */
  async function script(client: RawClient): Promise<Buffer> {
    const out: Buffer[] = [];
    const sizes = [1, 511, 4096, 65536, 65536 + 7, MiB, MiB + 100, 3 * MiB + 1];
    let off = 4097;
    for (const [i, n] of sizes.entries()) {
      client.write(request(CMD.WRITE, { cookie: BigInt(10 + i), offset: off, payload: pattern(n, i) }));
      out.push(await client.read(16));
      client.write(request(CMD.READ, { cookie: BigInt(100 + i), offset: off, length: n }));
      out.push(await client.read(16 + n));
      off += n + 1000;
    }
    client.write(request(CMD.READ, { cookie: 7n, offset: SIZE, length: 512 })); // EINVAL
    out.push(await client.read(16));
    client.write(request(CMD.WRITE, { cookie: 8n, offset: SIZE - 10, payload: pattern(100, 9) })); // ENOSPC, payload dropped
    out.push(await client.read(16));
    client.write(request(CMD.FLUSH, { cookie: 9n }));
    out.push(await client.read(16));
    return Buffer.concat(out);
  }

  it('serves a unix socket natively and a Duplex through streams, with the same bytes on the wire', async () => {
    const a = await connect();
    const ta = serve(a.server);
    expect(ta.transportKind).toBe('native');
    const nativeBytes = await script(a.client);
    a.client.write(request(CMD.DISC, { cookie: 0n }));
    expect(await a.client.waitClosed(3000)).toBe(true);
    await ta.done;

    process.env['AIONBD_SOCKET'] = 'stream';
    try {
      const b = await connect();
      const tb = serve(b.server);
      expect(tb.transportKind).toBe('stream');
      expect((await script(b.client)).equals(nativeBytes)).toBe(true);
      b.client.close();
      await tb.done;
    } finally {
      delete process.env['AIONBD_SOCKET'];
    }

    // Not a net.Socket at all: streams.
    const down = new PassThrough();
    const up = new PassThrough();
    const duplex = Duplex.from({ readable: up, writable: down });
    const tc = serve(duplex);
    expect(tc.transportKind).toBe('stream');
    up.write(request(CMD.FLUSH, { cookie: 5n }));
    const got = await new Promise<Buffer>((r) => down.once('data', r));
    expect(got.toString('hex')).toBe('67446698' + '00000000' + '0000000000000005');
    tc.destroy();
    await tc.done;
  });

  it('takes over the leftover and the bytes the net.Socket had already read, in order', async () => {
    const { client, server } = await connect();
    server.resume(); // let Node read ahead into the stream's buffer, as the handshake does
    server.pause();
    const data = pattern(8192, 3);
    const write = request(CMD.WRITE, { cookie: 2n, offset: 0, payload: data });
    // The request is cut inside its header: parsed out of order, the stream would not frame.
    client.write(write.subarray(10));
    await until(() => server.readableLength >= write.length - 10);
    const t = serve(server, write.subarray(0, 10));
    expect(t.transportKind).toBe('native');
    expect(await readSimpleReply(client)).toEqual({ magic: 0x67446698, error: 0, cookie: 2n });
    client.write(request(CMD.READ, { cookie: 3n, offset: 0, length: 8192 }));
    expect(await readSimpleReply(client)).toEqual({ magic: 0x67446698, error: 0, cookie: 3n });
    expect((await client.read(8192)).equals(data)).toBe(true);
    client.close();
    await t.done;
  });

  it('reads pipelined large WRITEs in place, answers all after the client half-closes, then closes', async () => {
    const { client, server } = await connect();
    const t = serve(server);
    expect(t.transportKind).toBe('native');
    const writes: Buffer[] = [];
    const datas: Buffer[] = [];
    for (let i = 0; i < 24; i++) {
      const d = pattern(MiB + (i % 3) * 4096 + (i === 5 ? 3 : 0), 50 + i);
      datas.push(d);
      writes.push(request(CMD.WRITE, { cookie: BigInt(i), offset: i * 2 * MiB, payload: d }));
    }
    client.write(Buffer.concat(writes));
    client.sock.end(); // half-close: the server must still answer every request
    const seen = new Set<bigint>();
    for (let i = 0; i < writes.length; i++) {
      const r = await readSimpleReply(client, 10_000);
      expect(r.error).toBe(0);
      seen.add(r.cookie);
    }
    expect(seen.size).toBe(writes.length);
    expect(await client.waitClosed(3000)).toBe(true);
    await t.done;
    const fd = fs.openSync(path.join(dir, 'd.img'), 'r');
    try {
      for (const [i, d] of datas.entries()) {
        const got = Buffer.alloc(d.length);
        fs.readSync(fd, got, 0, d.length, i * 2 * MiB);
        expect(got.equals(d)).toBe(true);
      }
    } finally {
      fs.closeSync(fd);
    }
  });

  it('releases every slot when the client resets the connection with replies queued', async () => {
    const { client, server } = await connect();
    const t = serve(server);
    client.sock.pause(); // replies pile up in the server's queue
    const reqs: Buffer[] = [];
    for (let i = 0; i < 16; i++) reqs.push(request(CMD.READ, { cookie: BigInt(i), offset: i * MiB, length: MiB }));
    client.write(Buffer.concat(reqs));
    await new Promise((r) => setTimeout(r, 200));
    client.close();
    await t.done;
    expect(t.inflight).toBe(0);
  });

  it('lets a closed connection be garbage-collected: the native handle does not keep its transport alive', async () => {
    // In a function of its own, so that nothing on this stack refers to the transmission.
    const open = async (): Promise<WeakRef<Transmission>> => {
      const { client, server } = await connect();
      const t = serve(server);
      expect(t.transportKind).toBe('native');
      client.write(request(CMD.READ, { cookie: 1n, offset: 0, length: 4096 }));
      expect((await readSimpleReply(client)).error).toBe(0);
      await client.read(4096);
      client.close();
      await t.done;
      return new WeakRef(t);
    };
    expect(await aliveAfterGc([await open(), await open(), await open()])).toBe(0);
  });

  it('parses every connection from one shared receive buffer: input held back for want of a slot is copied out, not overwritten', async () => {
    const image = pattern(256 * 4096, 11);
    const fd = fs.openSync(path.join(dir, 'd.img'), 'r+');
    try {
      fs.writeSync(fd, image, 0, image.length, 0);
    } finally {
      fs.closeSync(fd);
    }
    // Three times the depth in one write each: every connection holds input back while the
    // others read into the same buffer.
    const conns: { k: number; client: RawClient; t: Transmission; wire: Buffer }[] = [];
    for (let k = 0; k < 3; k++) {
      const { client, server } = await connect();
      const t = serve(server);
      expect(t.transportKind).toBe('native');
      const reqs: Buffer[] = [];
      for (let i = 0; i < 48; i++)
        reqs.push(request(CMD.READ, { cookie: BigInt(i), offset: (((k * 48 + i) * 37) % 256) * 4096, length: 4096 }));
      conns.push({ k, client, t, wire: Buffer.concat(reqs) });
    }
    for (const c of conns) c.client.write(c.wire);
    for (const c of conns) {
      const got = await readReplies(c.client, 48);
      for (let i = 0; i < 48; i++) {
        const at = (((c.k * 48 + i) * 37) % 256) * 4096;
        expect(got.get(BigInt(i))?.equals(image.subarray(at, at + 4096))).toBe(true);
      }
      c.client.close();
      await c.t.done;
    }
  });

  it('a connection that breaks the protocol in the middle of a read lets go of the shared buffer safely; the next one is served', async () => {
    const bad = await connect();
    const tb = serve(bad.server);
    const junk = Buffer.alloc(28, 0xee);
    bad.client.write(Buffer.concat([request(CMD.READ, { cookie: 1n, offset: 0, length: 4096 }), junk]));
    expect(await bad.client.waitClosed(3000)).toBe(true);
    await tb.done;
    const good = await connect();
    const tg = serve(good.server);
    good.client.write(request(CMD.READ, { cookie: 2n, offset: 4096, length: 4096 }));
    expect((await readSimpleReply(good.client)).error).toBe(0);
    await good.client.read(4096);
    good.client.close();
    await tg.done;
  });

  it('a socket the server owns is closed once taken over: one fd per connection; one handed in stays open', async () => {
    const owned = await connect();
    const before = fdCount();
    const to = serve(owned.server, null, true);
    expect(to.transportKind).toBe('native');
    await until(() => owned.server.destroyed);
    expect(fdCount()).toBe(before); // the dup took the place of the net.Socket's fd
    owned.client.write(request(CMD.READ, { cookie: 4n, offset: 0, length: 4096 }));
    expect((await readSimpleReply(owned.client)).error).toBe(0);
    await owned.client.read(4096);

    const lent = await connect();
    const before2 = fdCount();
    const tl = serve(lent.server);
    expect(fdCount()).toBe(before2 + 1);
    expect(lent.server.destroyed).toBe(false);
    lent.server.destroy(); // whoever handed it in may still drop the connection this way
    expect(await lent.client.waitClosed(3000)).toBe(true);
    await tl.done;

    owned.client.close();
    await to.done;
  });

  it('makes request slots as requests need them and drops the spare ones once the connection is idle', async () => {
    const { client, server } = await connect();
    const t = serve(server);
    expect(t.slots).toBe(0);
    const reqs: Buffer[] = [];
    for (let i = 0; i < 16; i++) reqs.push(request(CMD.READ, { cookie: BigInt(i), offset: i * 4096, length: 4096 }));
    client.write(Buffer.concat(reqs));
    await readReplies(client, 16);
    expect(t.slots).toBeGreaterThan(4);
    await until(() => t.slots <= 4, 3 * SLOT_IDLE_MS);
    client.write(request(CMD.READ, { cookie: 99n, offset: 0, length: 4096 }));
    expect((await readReplies(client, 1)).has(99n)).toBe(true);
    client.close();
    await t.done;
  });
});
