// A JSON-RPC client that pipelines requests and never reads its replies must not grow the
// server's memory: the server stops reading that connection while replies wait, serves other
// clients meanwhile, and once the client reads, every reply arrives, in order.
import fs from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain } from '../helpers/run.js';
import { startTarget, type RpcTarget } from './target.js';

const MiB = 2 ** 20;

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('JSON-RPC backpressure', () => {
  let t: RpcTarget;
  beforeAll(async () => {
    t = await startTarget();
    // Replies with some weight: each bdev_get_bdevs answer describes this bdev.
    await t.ok('bdev_malloc_create', '{"name": "m0", "block_size": 512, "num_blocks": 2048}');
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('does not grow while a client pipelines 20 MB of requests without reading; then answers all of them in order', async () => {
    const pid = t.proc.pid as number;
    const before = rssBytes(pid);
    const sock = net.connect(t.rpcSock);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    sock.pause(); // never read (until the end)

    // ~20 MB of small requests, written in pieces so the test itself stays small.
    const one = (id: number): string => `{"jsonrpc":"2.0","id":${id},"method":"bdev_get_bdevs"}`;
    const piece: string[] = [];
    let n = 0;
    let written = 0;
    while (written < 20 * MiB) {
      for (let k = 0; k < 4096; k++) piece.push(one(++n));
      const s = `${piece.join('\n')}\n`;
      piece.length = 0;
      written += s.length;
      sock.write(s);
    }

    // Give the server time to take whatever it will take; sample its memory meanwhile.
    let peak = before;
    const until = Date.now() + 8_000;
    let last = -1;
    let stable = 0;
    while (Date.now() < until) {
      await sleep(250);
      const r = rssBytes(pid);
      peak = Math.max(peak, r);
      // The client's send queue stops shrinking once the server stops reading.
      const left = sock.writableLength;
      stable = left === last ? stable + 1 : 0;
      last = left;
      if (stable >= 8 && left > 0) break;
    }
    expect(sock.writableLength, 'the server stopped reading this client').toBeGreaterThan(0);
    expect(peak - before, `server RSS grew by ${((peak - before) / MiB).toFixed(0)} MiB`).toBeLessThan(96 * MiB);

    // Another client is served meanwhile.
    const other = await t.rpc('bdev_get_bdevs', '-b', 'm0');
    expect(other.code, explain(other)).toBe(0);
    expect(JSON.parse(other.stdout)).toMatchObject([{ name: 'm0' }]);

    // The first client now reads: every request is answered, in order, nothing lost.
    let expect_ = 1;
    let text = '';
    let bad: string | null = null;
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 90_000);
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        text += d;
        let nl = text.indexOf('\n');
        let start = 0;
        while (nl >= 0) {
          const r = JSON.parse(text.slice(start, nl)) as { id: number; result?: unknown };
          if (bad === null && (r.id !== expect_ || !Array.isArray(r.result))) bad = text.slice(start, nl).slice(0, 200);
          expect_++;
          start = nl + 1;
          nl = text.indexOf('\n', start);
        }
        text = text.slice(start);
        if (expect_ > n) {
          clearTimeout(timer);
          resolve();
        }
      });
      sock.resume();
    });
    await done;
    sock.destroy();
    expect(bad).toBeNull();
    expect(expect_ - 1).toBe(n);
    // Reading it all did not need the memory either.
    expect(rssBytes(pid) - before).toBeLessThan(128 * MiB);
  }, 150_000);

  it('holds back the answer to one large batch the same way, and sends it whole once read', async () => {
    const pid = t.proc.pid as number;
    const before = rssBytes(pid);
    const sock = net.connect(t.rpcSock);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    sock.pause();
    // One batch of 100k requests (~5 MB), within the request size limit; its answer is far larger.
    const count = 100_000;
    const batch = Array.from({ length: count }, (_, i) => `{"jsonrpc":"2.0","id":${i + 1},"method":"bdev_get_bdevs"}`);
    sock.write(`[${batch.join(',')}]\n`);
    let peak = before;
    let last = -1;
    let stable = 0;
    const until = Date.now() + 8_000;
    while (Date.now() < until) {
      await sleep(250);
      const r = rssBytes(pid);
      peak = Math.max(peak, r);
      stable = r <= last + MiB ? stable + 1 : 0;
      last = Math.max(last, r);
      if (stable >= 8) break;
    }
    expect(peak - before, `server RSS grew by ${((peak - before) / MiB).toFixed(0)} MiB`).toBeLessThan(128 * MiB);
    const other = await t.rpc('bdev_get_bdevs', '-b', 'm0');
    expect(other.code, explain(other)).toBe(0);

    const chunks: Buffer[] = [];
    const ended = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 90_000);
      sock.on('data', (d: Buffer) => {
        chunks.push(d);
        if (d[d.length - 1] === 0x0a) {
          clearTimeout(timer);
          resolve();
        }
      });
      sock.resume();
    });
    await ended;
    sock.destroy();
    const answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: number; result?: unknown }[];
    expect(answer.length).toBe(count);
    expect(answer.every((r, i) => r.id === i + 1 && Array.isArray(r.result))).toBe(true);
  }, 150_000);
});
