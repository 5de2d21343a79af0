// Memory bounded by the budget, against the CLI server as a child process: clients that pipeline
// huge READs and never read their replies do not grow the server's RSS past the budget, do not
// hold up another client, and the memory comes back when they go. Requests as large as the CLI
// allows (--max-payload 2G), unaligned, are served in pieces without a crash.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { requireBuilt, startServer, stopAllServers } from '../helpers/server.js';
import { RawClient, handshakeGo, readSimpleReply, request } from '../helpers/wire.js';

const MiB = 1 << 20;
const CMD = { READ: 0, WRITE: 1 };

function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return b;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('memory budget (CLI server)', () => {
  requireBuilt();
  afterEach(async () => {
    await stopAllServers();
  });

  it('4 clients pipelining 128 READs of 64 MiB (the default maximum) that they never read: RSS < 512 MiB, a fifth is served, memory comes back', async () => {
    const srv = await startServer({ aio: ['disk.img,size=1G'] });
    const path = srv.socketPath as string;
    const hogs: RawClient[] = [];
    for (let k = 0; k < 4; k++) {
      const c = await RawClient.connect(path);
      await handshakeGo(c, 'disk');
      c.sock.pause(); // never reads a reply
      const reqs: Buffer[] = [];
      for (let i = 0; i < 128; i++) reqs.push(request(CMD.READ, { cookie: BigInt(i), offset: (i % 15) * 64 * MiB, length: 64 * MiB }));
      c.write(Buffer.concat(reqs));
      hogs.push(c);
    }
    let peak = 0;
    for (let t = 0; t < 12; t++) {
      await sleep(250);
      peak = Math.max(peak, rss(srv.pid));
    }
    expect(peak).toBeLessThan(512 * MiB);

    const c5 = await RawClient.connect(path);
    await handshakeGo(c5, 'disk');
    const t0 = performance.now();
    c5.write(request(CMD.READ, { cookie: 77n, offset: 4096, length: 4096 }));
    expect(await readSimpleReply(c5, 1000)).toEqual({ magic: 0x67446698, error: 0, cookie: 77n });
    await c5.read(4096, 1000);
    expect(performance.now() - t0).toBeLessThan(1000);
    c5.close();
    peak = Math.max(peak, rss(srv.pid));
    expect(peak).toBeLessThan(512 * MiB);

    for (const c of hogs) c.close();
    const deadline = Date.now() + 10_000;
    let now = rss(srv.pid);
    while (now >= 256 * MiB && Date.now() < deadline) {
      await sleep(250);
      now = rss(srv.pid);
    }
    expect(now).toBeLessThan(256 * MiB);
    console.log(`never-reading clients: peak server RSS ${Math.round(peak / MiB)} MiB, ${Math.round(now / MiB)} MiB after they closed`);
  }, 60_000);

  it('--max-payload 2G: a 2 GiB WRITE and an unaligned 2^31-byte READ at offset 1 are served in pieces', async () => {
    const srv = await startServer({ aio: ['big.img,size=3G'], args: ['--max-payload', '2G'] });
    const c = await RawClient.connect(srv.socketPath as string);
    await handshakeGo(c, 'big');
    const len = 2 ** 31;
    // The WRITE's payload goes out in slices; its marker bytes let the READ be checked at both ends.
    const slice = pattern(8 * MiB, 5);
    c.write(request(CMD.WRITE, { cookie: 1n, offset: 0, length: len }));
    for (let at = 0; at < len; at += slice.length) {
      if (!c.sock.write(slice)) await new Promise((r) => c.sock.once('drain', r));
    }
    expect(await readSimpleReply(c, 60_000)).toEqual({ magic: 0x67446698, error: 0, cookie: 1n });
    c.write(request(CMD.READ, { cookie: 2n, offset: 1, length: len }));
    expect(await readSimpleReply(c, 30_000)).toEqual({ magic: 0x67446698, error: 0, cookie: 2n });
    let peak = 0;
    for (let at = 0; at < len; ) {
      const n = Math.min(8 * MiB, len - at);
      const got = await c.read(n, 30_000);
      // Byte i of the reply is byte i+1 of the image, which the WRITE set to slice[(i+1) % 8 MiB]
      // for i+1 < 2^31, and which was never written (zero) at 2^31.
      const want = Buffer.concat([slice, slice]).subarray((at + 1) % slice.length, ((at + 1) % slice.length) + n);
      if (at + n === len) want[n - 1] = 0;
      if (!got.equals(want)) throw new Error(`READ data differs in [${at}, ${at + n})`);
      at += n;
      if ((at / n) % 32 === 0) peak = Math.max(peak, rss(srv.pid));
    }
    expect(peak).toBeLessThan(512 * MiB);
    expect(srv.proc.exitCode).toBeNull();
    c.close();
  }, 180_000);
});
