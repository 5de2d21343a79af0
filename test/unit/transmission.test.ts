import fs from 'node:fs';
import { aioContexts } from '../helpers/aio.js';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startInProcess, type TestServer } from '../helpers/inproc.js';
import { RawClient, handshakeGo, request, readSimpleReply } from '../helpers/wire.js';
import { pattern } from '../helpers/bdev.js';

const MiB = 1 << 20;
const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, WRITE_ZEROES: 6 };
const ERR = { EPERM: 1, EIO: 5, EINVAL: 22, ENOSPC: 28 };
// Larger than the default maximum payload (64 MiB), so that a request over it is not also past the end.
const SIZE = 128 * MiB;

describe('transmission (bytes on the wire)', () => {
  let srv: TestServer;
  let c: RawClient;
  beforeEach(async () => {
    srv = await startInProcess([
      { name: 'd0', size: SIZE },
      { name: 'ro', size: MiB, readonly: true },
    ]);
    c = await RawClient.connect(srv.socketPath);
  });
  afterEach(async () => {
    c.close();
    await srv.close();
  });

  async function expectReply(cookie: bigint, error: number): Promise<void> {
    expect(await readSimpleReply(c)).toEqual({ magic: 0x67446698, error, cookie });
  }

  it('writes and reads back, echoing cookies byte for byte', async () => {
    const { size, flags } = await handshakeGo(c, 'd0');
    expect(size).toBe(BigInt(SIZE));
    expect(flags & 0x010d).toBe(0x010d); // HAS_FLAGS, SEND_FLUSH, SEND_FUA, CAN_MULTI_CONN
    const data = pattern(64 * 1024, 1);
    c.write(request(CMD.WRITE, { cookie: 0xffffffffffffffffn, offset: 8192, payload: data }));
    await expectReply(0xffffffffffffffffn, 0);
    c.write(request(CMD.READ, { cookie: 2n ** 53n + 1n, offset: 8192, length: data.length }));
    await expectReply(2n ** 53n + 1n, 0);
    expect((await c.read(data.length)).equals(data)).toBe(true);
    // Last block.
    const last = pattern(512, 2);
    c.write(request(CMD.WRITE, { cookie: 3n, offset: SIZE - 512, payload: last, flags: 1 }));
    await expectReply(3n, 0);
    c.write(request(CMD.FLUSH, { cookie: 4n }));
    await expectReply(4n, 0);
    const img = fs.readFileSync(path.join(srv.dir, 'd0.img'));
    expect(img.subarray(8192, 8192 + data.length).equals(data)).toBe(true);
    expect(img.subarray(SIZE - 512).equals(last)).toBe(true);
  });

  it('answers bad requests with the right error and keeps the stream in sync', async () => {
    await handshakeGo(c, 'd0');
    const cases: [Buffer, number][] = [
      [request(CMD.WRITE, { cookie: 10n, offset: SIZE, payload: pattern(512, 3) }), ERR.ENOSPC], // past the end
      [request(CMD.READ, { cookie: 11n, offset: SIZE - 512, length: 1024 }), ERR.EINVAL], // past the end
      [request(CMD.READ, { cookie: 12n, offset: 0xfffffffffffffe00n, length: 1024 }), ERR.EINVAL], // offset+length wraps 64 bits
      [request(CMD.WRITE, { cookie: 13n, offset: 0xfffffffffffffe00n, payload: pattern(1024, 3) }), ERR.ENOSPC],
      [request(CMD.READ, { cookie: 14n, offset: 0, length: 0 }), ERR.EINVAL], // length 0
      [request(CMD.TRIM, { cookie: 15n, offset: 0, length: 0 }), ERR.EINVAL],
      [request(CMD.WRITE, { cookie: 16n, offset: 100, payload: pattern(512, 3) }), 0], // unaligned is fine
      [request(42, { cookie: 17n }), ERR.EINVAL], // unknown command
      [request(CMD.READ, { cookie: 18n, length: 512, flags: 0x8000 }), ERR.EINVAL], // unknown flag
      [request(CMD.WRITE, { cookie: 19n, payload: pattern(512, 3), flags: 2 }), ERR.EINVAL], // NO_HOLE on WRITE
      [request(CMD.READ, { cookie: 20n, length: 512, flags: 8 }), ERR.EINVAL], // REQ_ONE on READ
      [request(CMD.FLUSH, { cookie: 21n, offset: 512 }), ERR.EINVAL], // FLUSH with offset
      [request(CMD.READ, { cookie: 22n, length: 64 * MiB + 512 }), ERR.EINVAL], // over max payload
      [request(CMD.WRITE, { cookie: 23n, length: 64 * MiB + 512, payload: Buffer.alloc(64 * MiB + 512) }), ERR.EINVAL], // over max, payload read and dropped
      [request(CMD.READ, { cookie: 26n, length: 64 * MiB }), 0], // the max itself
      [request(CMD.READ, { cookie: 24n, length: 512, flags: 1 }), 0], // FUA on READ is accepted
      [request(CMD.FLUSH, { cookie: 25n, flags: 1 }), 0], // FUA on FLUSH too
    ];
    for (const [req, err] of cases) {
      c.write(req);
      const r = await readSimpleReply(c);
      expect({ cookie: r.cookie, error: r.error }).toEqual({ cookie: req.readBigUInt64BE(8), error: err });
      if (req.readUInt16BE(6) === CMD.READ && err === 0) await c.read(req.readUInt32BE(24));
    }
  });

  it('serves any byte offset and length, and concurrent unaligned writes into one block both survive', async () => {
    await handshakeGo(c, 'd0');
    const c2 = await RawClient.connect(srv.socketPath);
    await handshakeGo(c2, 'd0');
    const img = Buffer.alloc(64 * 1024);
    const writes: [RawClient, number, Buffer][] = [];
    // Many small writes that share blocks, spread over two connections, all in flight at once.
    for (let i = 0; i < 64; i++) {
      const off = 1000 + i * 37 * 7;
      const data = pattern(37 + (i % 5), i + 1);
      writes.push([i % 2 === 0 ? c : c2, off, data]);
    }
    const disjoint = writes.filter((_, i) => i % 7 !== 3); // skip some so neighbours do not overlap
    let cookie = 100n;
    for (const [cl, off, data] of disjoint) cl.write(request(CMD.WRITE, { cookie: cookie++, offset: off, payload: data }));
    for (const [cl, off, data] of disjoint) {
      expect((await readSimpleReply(cl)).error).toBe(0);
      data.copy(img, off);
    }
    c.write(request(CMD.READ, { cookie: 1n, offset: 777, length: 30000 }));
    expect((await readSimpleReply(c)).error).toBe(0);
    expect((await c.read(30000)).equals(img.subarray(777, 30777))).toBe(true);
    // Unaligned WRITE_ZEROES and TRIM.
    c.write(request(CMD.WRITE_ZEROES, { cookie: 2n, offset: 1001, length: 3000 }));
    expect((await readSimpleReply(c)).error).toBe(0);
    img.fill(0, 1001, 4001);
    c.write(request(CMD.TRIM, { cookie: 3n, offset: 50001, length: 10 }));
    expect((await readSimpleReply(c)).error).toBe(0);
    c.write(request(CMD.READ, { cookie: 4n, offset: 0, length: 64 * 1024 }));
    expect((await readSimpleReply(c)).error).toBe(0);
    expect((await c.read(64 * 1024)).equals(img)).toBe(true);
    c2.close();
  });

  it('stops reading from a client that never reads its replies, with memory bounded, and recovers', async () => {
    await handshakeGo(c, 'd0');
    c.sock.pause(); // we read nothing: replies pile up in the socket buffers
    const before = process.memoryUsage();
    // 800 READs of 1 MiB: 800 MiB of replies if the server kept going.
    const reqs: Buffer[] = [];
    for (let i = 0; i < 800; i++) reqs.push(request(CMD.READ, { cookie: BigInt(i), offset: (i % 60) * MiB, length: MiB }));
    c.write(Buffer.concat(reqs));
    await new Promise((r) => setTimeout(r, 1500));
    const after = process.memoryUsage();
    const grown = after.rss - before.rss + (after.arrayBuffers - before.arrayBuffers);
    expect(grown).toBeLessThan(400 * MiB);
    // The client reads again: every reply arrives, in full.
    c.sock.resume();
    let n = 0;
    for (; n < 800; n++) {
      const r = await readSimpleReply(c, 20_000);
      expect(r.error).toBe(0);
      await c.read(MiB, 20_000);
    }
    expect(n).toBe(800);
  }, 120_000);

  it('refuses writes on a read-only export with EPERM', async () => {
    const { flags } = await handshakeGo(c, 'ro');
    expect(flags & 2).toBe(2);
    c.write(request(CMD.WRITE, { cookie: 1n, payload: pattern(512, 1) }));
    await expectReply(1n, ERR.EPERM);
    c.write(request(CMD.TRIM, { cookie: 2n, length: 512 }));
    await expectReply(2n, ERR.EPERM);
    c.write(request(CMD.WRITE_ZEROES, { cookie: 3n, length: 512 }));
    await expectReply(3n, ERR.EPERM);
    c.write(request(CMD.READ, { cookie: 4n, length: 512 }));
    await expectReply(4n, 0);
  });

  it('zeroes with WRITE_ZEROES (with and without NO_HOLE) and trims', async () => {
    await handshakeGo(c, 'd0');
    c.write(request(CMD.WRITE, { cookie: 1n, offset: 0, payload: pattern(MiB, 5) }));
    await expectReply(1n, 0);
    c.write(request(CMD.WRITE_ZEROES, { cookie: 2n, offset: 4096, length: 8192, flags: 2 }));
    await expectReply(2n, 0);
    c.write(request(CMD.WRITE_ZEROES, { cookie: 3n, offset: 65536, length: 65536 }));
    await expectReply(3n, 0);
    c.write(request(CMD.TRIM, { cookie: 4n, offset: 512 * 1024, length: 512 * 1024 }));
    await expectReply(4n, 0);
    c.write(request(CMD.READ, { cookie: 5n, offset: 0, length: 512 * 1024 }));
    await expectReply(5n, 0);
    const got = await c.read(512 * 1024);
    const want = pattern(MiB, 5).subarray(0, 512 * 1024);
    want.fill(0, 4096, 4096 + 8192);
    want.fill(0, 65536, 131072);
    expect(got.equals(want)).toBe(true);
  });

  it('keeps 128 requests in flight and answers each once, matched by cookie', async () => {
    await handshakeGo(c, 'd0');
    const reqs: Buffer[] = [];
    for (let i = 0; i < 256; i++)
      reqs.push(
        request(i % 2 === 0 ? CMD.WRITE : CMD.READ, {
          cookie: BigInt(1000 + i),
          offset: (i >> 1) * 4096,
          ...(i % 2 === 0 ? { payload: pattern(4096, i) } : { length: 4096 }),
        }),
      );
    c.write(Buffer.concat(reqs));
    const seen = new Map<bigint, number>();
    for (let i = 0; i < 256; i++) {
      const r = await readSimpleReply(c);
      expect(r.error).toBe(0);
      seen.set(r.cookie, (seen.get(r.cookie) ?? 0) + 1);
      if (r.cookie % 2n === 1n) await c.read(4096);
    }
    expect(seen.size).toBe(256);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
  });

  it('DISC: in-flight requests are answered, later bytes ignored, then the socket closes', async () => {
    await handshakeGo(c, 'd0');
    c.write(
      Buffer.concat([
        request(CMD.READ, { cookie: 1n, length: 4096 }),
        request(CMD.WRITE, { cookie: 2n, offset: 4096, payload: pattern(4096, 9) }),
        request(CMD.DISC, { cookie: 0n }),
        request(CMD.READ, { cookie: 3n, length: 4096 }),
      ]),
    );
    const cookies: bigint[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await readSimpleReply(c);
      cookies.push(r.cookie);
      if (r.cookie === 1n) await c.read(4096);
    }
    expect(cookies.sort()).toEqual([1n, 2n]);
    expect(await c.waitClosed(3000)).toBe(true);
    expect(c.buffered).toBe(0);
  });

  it('server shutdown: requests that arrive after it are answered with ESHUTDOWN, not dropped, then the socket closes', async () => {
    await handshakeGo(c, 'd0');
    const before = fs.readFileSync(path.join(srv.dir, 'd0.img')).subarray(0, 8192);
    const closing = srv.server.close();
    c.write(
      Buffer.concat([
        request(CMD.READ, { cookie: 5n, length: 4096 }),
        request(CMD.WRITE, { cookie: 6n, offset: 0, payload: pattern(8192, 3) }),
        request(CMD.FLUSH, { cookie: 7n }),
      ]),
    );
    for (const cookie of [5n, 6n, 7n]) await expectReply(cookie, 108);
    expect(await c.waitClosed(3000)).toBe(true);
    await closing;
    expect(fs.readFileSync(path.join(srv.dir, 'd0.img')).subarray(0, 8192).equals(before)).toBe(true);
  });

  it('closes on a bad request magic and on an absurd WRITE length, and keeps serving others', async () => {
    await handshakeGo(c, 'd0');
    const bad = request(CMD.READ, { cookie: 1n, length: 512 });
    bad.writeUInt32BE(0xdeadbeef, 0);
    c.write(bad);
    expect(await c.waitClosed(2000)).toBe(true);
    const c2 = await RawClient.connect(srv.socketPath);
    await handshakeGo(c2, 'd0');
    c2.write(request(CMD.WRITE, { cookie: 1n, length: 0xffffffff }));
    expect(await c2.waitClosed(2000)).toBe(true);
    c2.close();
    const c3 = await RawClient.connect(srv.socketPath);
    await handshakeGo(c3, 'd0');
    c3.write(request(CMD.READ, { cookie: 77n, length: 512 }));
    expect((await readSimpleReply(c3)).cookie).toBe(77n);
    c3.close();
  });

  it('a client that disconnects mid-WRITE or with requests in flight leaks nothing', async () => {
    const aioBefore = aioContexts();
    const fdsBefore = fs.readdirSync('/proc/self/fd').length;
    for (let round = 0; round < 20; round++) {
      const d = await RawClient.connect(srv.socketPath);
      await handshakeGo(d, 'd0');
      const reqs: Buffer[] = [];
      for (let i = 0; i < 64; i++) reqs.push(request(CMD.READ, { cookie: BigInt(i), offset: i * 65536, length: 65536 }));
      reqs.push(request(CMD.WRITE, { cookie: 99n, length: 1 * MiB }), pattern(1000, 1)); // payload cut short
      d.write(Buffer.concat(reqs));
      d.close();
    }
    // Everything settles: connections gone, every slot back.
    const deadline = Date.now() + 5000;
    while (srv.server.connections > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(srv.server.connections).toBeLessThanOrEqual(1); // only the test's own idle client
    expect(srv.registry.get('d0').outstanding).toBe(0);
    expect(aioContexts()).toBe(aioBefore);
    expect(fs.readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(fdsBefore);
  });
});
