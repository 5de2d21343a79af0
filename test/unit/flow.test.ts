// Continuous flow on the native transport: a parsed request reaches the device before the
// server reads more of the socket. Observed on the addon's own calls (socket reads and
// io_submit), recorded in the order they happen.
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAioBdev } from '../../src/modules/aio/aio.js';
import type { Bdev } from '../../src/bdev/bdev.js';
import { bufferPool } from '../../src/bdev/buffers.js';
import { silentLogger } from '../../src/log.js';
import { native } from '../../src/native.js';
import { Export } from '../../src/nbd/export.js';
import { ReplyStyle } from '../../src/nbd/replies.js';
import { Transmission } from '../../src/nbd/transmission.js';
import { RawClient, request, readSimpleReply } from '../helpers/wire.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { pattern } from '../helpers/bdev.js';

const MiB = 1 << 20;
const CMD = { READ: 0, WRITE: 1, FLUSH: 3 };

type Ev = { kind: 'read'; completes: boolean; got: number } | { kind: 'readv'; aLen: number; got: number } | { kind: 'submit'; n: number };

describe('continuous flow', () => {
  let dir: string;
  let bdev: Bdev;
  let x: Export;
  let listener: net.Server;
  let sockPath: string;
  let accepted: ((s: net.Socket) => void) | null = null;
  /** Every socket read and io_submit of the addon while a test records, in order. */
  let log: Ev[] | null = null;
  const restore: (() => void)[] = [];

  beforeAll(async () => {
    // The addon's classes, wrapped (before the bdev makes its engine) so that the calls are seen.
    const n = native();
    const { SockIo, AioEngine } = n;
    n.SockIo = class extends SockIo {
      override read(buf: Uint8Array, offset: number, length: number): number {
        const got = super.read(buf, offset, length);
        // A read into a payload buffer (1 MiB or more; the receive buffer is smaller) that got
        // all it asked for has completed that WRITE's payload.
        log?.push({ kind: 'read', completes: buf.length >= MiB && got === length, got });
        return got;
      }
      override readv(a: Uint8Array, aOff: number, aLen: number, b: Uint8Array, bOff: number, bLen: number): number {
        const got = super.readv(a, aOff, aLen, b, bOff, bLen);
        log?.push({ kind: 'readv', aLen, got });
        // Payload bytes for a 1 MiB buffer, all it asked for: that WRITE's payload is complete.
        if (a.length >= MiB && got >= aLen) log?.push({ kind: 'read', completes: true, got });
        return got;
      }
    };
    n.AioEngine = class extends AioEngine {
      override submit(count: number): number {
        log?.push({ kind: 'submit', n: count });
        return super.submit(count);
      }
    };
    restore.push(() => {
      n.SockIo = SockIo;
      n.AioEngine = AioEngine;
    });
    dir = tmpDir();
    bdev = createAioBdev({ filename: path.join(dir, 'd.img'), name: 'd', size: 64 * MiB, log: silentLogger() });
    x = new Export(bdev);
    sockPath = path.join(dir, 's.sock');
    listener = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => {
      accepted?.(s);
    });
    await new Promise<void>((r) => listener.listen(sockPath, () => r()));
  });
  afterEach(() => {
    log = null;
  });
  afterAll(async () => {
    for (const f of restore.splice(0)) f();
    listener.close();
    await bdev.close();
    rmrf(dir);
  });

  async function connect(): Promise<{ client: RawClient; t: Transmission }> {
    const got = new Promise<net.Socket>((r) => {
      accepted = r;
    });
    const client = await RawClient.connect(sockPath);
    const server = await got;
    accepted = null;
    const t = new Transmission(
      server,
      x,
      {
        maxPayload: 32 * MiB,
        depth: 16,
        pool: bufferPool(),
        log: silentLogger(),
        style: ReplyStyle.Simple,
        metaContexts: [],
        closing: () => false,
      },
      null,
    );
    expect(t.transportKind).toBe('native');
    return { client, t };
  }

  it('submits a WRITE whose payload a read completed before reading the socket again', async () => {
    const { client, t } = await connect();
    const seen: Ev[] = [];
    log = seen;
    const datas: Buffer[] = [];
    const reqs: Buffer[] = [];
    for (let i = 0; i < 12; i++) {
      const d = pattern(MiB, i);
      datas.push(d);
      reqs.push(request(CMD.WRITE, { cookie: BigInt(i), offset: i * 2 * MiB, payload: d }));
    }
    client.write(Buffer.concat(reqs));
    for (let i = 0; i < reqs.length; i++) expect((await readSimpleReply(client, 10_000)).error).toBe(0);

    const completing = seen.flatMap((e, i) => (e.kind === 'read' && e.completes ? [i] : []));
    expect(seen.some((e) => e.kind === 'readv' && e.got > e.aLen)).toBe(true); // payload rest + next header in one read
    expect(completing.length).toBeGreaterThan(0);
    for (const i of completing) expect(seen[i + 1]?.kind).toBe('submit');

    // The data went where it was asked to.
    for (const [i, d] of datas.entries()) {
      client.write(request(CMD.READ, { cookie: 100n + BigInt(i), offset: i * 2 * MiB, length: MiB }));
      expect((await readSimpleReply(client)).error).toBe(0);
      expect((await client.read(MiB)).equals(d)).toBe(true);
    }
    client.close();
    await t.done;
  });

  it('reads the rest of a small WRITE payload into its buffer and what follows into the receive buffer', async () => {
    const { client, t } = await connect();
    const seen: Ev[] = [];
    log = seen;
    const readsDone = async (k: number): Promise<void> => {
      const deadline = Date.now() + 3000;
      while (seen.filter((e) => (e.kind === 'read' || e.kind === 'readv') && e.got > 0).length < k) {
        if (Date.now() > deadline) throw new Error(`the server did not read ${k} times`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const data = pattern(4096, 77);
    const write = request(CMD.WRITE, { cookie: 0x1122334455667788n, offset: 8192, payload: data });
    const flush = request(CMD.FLUSH, { cookie: 0x99n });
    // Header and 1000 payload bytes; then 2000 more; then the last 1096 with the next request.
    client.write(write.subarray(0, 28 + 1000));
    await readsDone(1);
    client.write(write.subarray(28 + 1000, 28 + 3000));
    await readsDone(2);
    client.write(Buffer.concat([write.subarray(28 + 3000), flush]));
    // Both answered, in either order.
    const ok = (cookie: string): string => `6744669800000000${cookie}`;
    const replies = [(await client.read(16)).toString('hex'), (await client.read(16)).toString('hex')].sort();
    expect(replies).toEqual([ok('0000000000000099'), ok('1122334455667788')]);
    client.write(request(CMD.READ, { cookie: 0x77n, offset: 8192, length: 4096 }));
    expect((await client.read(16)).toString('hex')).toBe(ok('0000000000000077'));
    expect((await client.read(4096)).equals(data)).toBe(true);
    const scatter = seen.filter((e) => e.kind === 'readv');
    expect(scatter.map((e) => [e.aLen, e.got])).toEqual([
      [3096, 2000],
      [1096, 1096 + 28],
    ]);
    client.close();
    await t.done;
  });
});
