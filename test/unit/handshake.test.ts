import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startInProcess, type TestServer } from '../helpers/inproc.js';
import { RawClient, goData, handshakeGo, option, readOptReply, request, readSimpleReply } from '../helpers/wire.js';

const REP = { ACK: 1, SERVER: 2, INFO: 3, ERR_UNSUP: 0x80000001, ERR_POLICY: 0x80000002, ERR_INVALID: 0x80000003, ERR_UNKNOWN: 0x80000006 };
const OPT_REPLY_MAGIC = 0x0003e889045565a9n;
const MiB = 1 << 20;

describe('handshake (bytes on the wire)', () => {
  let srv: TestServer;
  let c: RawClient;
  beforeEach(async () => {
    srv = await startInProcess(
      [
        { name: 'd0', size: 16 * MiB },
        { name: 'd1', size: 8 * MiB },
      ],
      { handshakeTimeoutMs: 1500 },
    );
    c = await RawClient.connect(srv.socketPath);
  });
  afterEach(async () => {
    c.close();
    await srv.close();
  });

  /** A fresh client still gets served: the server survived whatever the test did. */
  async function stillServes(): Promise<void> {
    const c2 = await RawClient.connect(srv.socketPath);
    try {
      const { size } = await handshakeGo(c2, 'd0');
      expect(size).toBe(BigInt(16 * MiB));
      c2.write(request(0, { cookie: 9n, length: 512 }));
      const r = await readSimpleReply(c2);
      expect(r).toEqual({ magic: 0x67446698, error: 0, cookie: 9n });
      await c2.read(512);
    } finally {
      c2.close();
    }
  }

  it('greets with NBDMAGIC, IHAVEOPT and FIXED_NEWSTYLE|NO_ZEROES', async () => {
    expect((await c.read(18)).toString('hex')).toBe('4e42444d41474943' + '49484156454f5054' + '0003');
  });

  it('closes on unknown client flags without a reply', async () => {
    await c.read(18);
    c.write(Buffer.from([0, 0, 0, 4 | 1]));
    expect(await c.waitClosed(2000)).toBe(true);
    expect(c.buffered).toBe(0);
    await stillServes();
  });

  it('EXPORT_NAME replies with 134 bytes without NO_ZEROES, 10 with it', async () => {
    await c.read(18);
    c.write(Buffer.from([0, 0, 0, 1]));
    c.write(option(1, Buffer.from('d1')));
    const r = await c.read(134);
    expect(r.readBigUInt64BE(0)).toBe(BigInt(8 * MiB));
    expect(r.readUInt16BE(8) & 1).toBe(1);
    expect(r.subarray(10).every((b) => b === 0)).toBe(true);
    c.close();
    c = await RawClient.connect(srv.socketPath);
    await c.read(18);
    c.write(Buffer.from([0, 0, 0, 3]));
    c.write(option(1, Buffer.from('d1')));
    const r2 = await c.read(10);
    expect(r2.readBigUInt64BE(0)).toBe(BigInt(8 * MiB));
    // Transmission starts right after: a READ is answered.
    c.write(request(0, { cookie: 5n, length: 512 }));
    expect(await readSimpleReply(c)).toEqual({ magic: 0x67446698, error: 0, cookie: 5n });
  });

  it('EXPORT_NAME for an unknown export closes the connection', async () => {
    await c.read(18);
    c.write(Buffer.from([0, 0, 0, 3]));
    c.write(option(1, Buffer.from('nope')));
    expect(await c.waitClosed(2000)).toBe(true);
    await stillServes();
  });

  it('answers an unknown option with ERR_UNSUP and keeps negotiating; PEEK_EXPORT too', async () => {
    await c.read(18);
    c.write(Buffer.from([0, 0, 0, 3]));
    c.write(option(99, Buffer.alloc(10, 0xaa)));
    const r = await readOptReply(c);
    expect(r.magic).toBe(OPT_REPLY_MAGIC);
    expect(r.opt).toBe(99);
    expect(r.type).toBe(REP.ERR_UNSUP);
    c.write(option(4));
    expect((await readOptReply(c)).type).toBe(REP.ERR_UNSUP);
    c.write(option(7, goData('d0')));
    const info = await readOptReply(c);
    expect(info.type).toBe(REP.INFO);
    expect(info.data.length).toBe(12);
    expect((await readOptReply(c)).type).toBe(REP.ACK);
  });

  it('LIST sends one REP_SERVER per export then ACK; LIST with data is ERR_INVALID', async () => {
    await c.read(18);
    c.write(Buffer.from([0, 0, 0, 3]));
    c.write(option(3, Buffer.from('x')));
    expect((await readOptReply(c)).type).toBe(REP.ERR_INVALID);
    c.write(option(3));
    const names: string[] = [];
    for (;;) {
      const r = await readOptReply(c);
      expect(r.opt).toBe(3);
      if (r.type === REP.ACK) {
        expect(r.data.length).toBe(0);
        break;
      }
      expect(r.type).toBe(REP.SERVER);
      names.push(r.data.toString('utf8', 4, 4 + r.data.readUInt32BE(0)));
    }
    expect(names).toEqual(['d0', 'd1']);
  });

  it('INFO: unknown export is ERR_UNKNOWN with no REP_INFO; bad lengths are ERR_INVALID; block sizes pass QEMU checks', async () => {
    await c.read(18);
    c.write(Buffer.from([0, 0, 0, 3]));
    c.write(option(6, goData('missing')));
    expect((await readOptReply(c)).type).toBe(REP.ERR_UNKNOWN);
    const bad = goData('d0');
    bad.writeUInt32BE(1000, 0); // name length beyond the option
    c.write(option(6, bad));
    expect((await readOptReply(c)).type).toBe(REP.ERR_INVALID);
    c.write(option(6, goData('d0', [3, 1])));
    const got = new Map<number, Buffer>();
    for (;;) {
      const r = await readOptReply(c);
      if (r.type === REP.ACK) break;
      expect(r.type).toBe(REP.INFO);
      got.set(r.data.readUInt16BE(0), r.data);
    }
    const exp = got.get(0) as Buffer;
    expect(exp.length).toBe(12);
    expect(exp.readBigUInt64BE(2)).toBe(BigInt(16 * MiB));
    expect(exp.readUInt16BE(10) & 1).toBe(1);
    expect((got.get(1) as Buffer).toString('utf8', 2)).toBe('d0');
    const bs = got.get(3) as Buffer;
    expect(bs.length).toBe(14);
    const [min, pref, max] = [bs.readUInt32BE(2), bs.readUInt32BE(6), bs.readUInt32BE(10)];
    const pow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;
    expect(pow2(min) && pow2(pref) && pref >= min && max >= pref && max % min === 0 && (16 * MiB) % min === 0).toBe(true);
    expect([min, pref, max]).toEqual([1, 4096, 64 * MiB]);
    // GO with the same parameters gives the same answer, then transmission.
    c.write(option(7, goData('d0', [3, 1])));
    const again = await readOptReply(c);
    expect(again.data.equals(exp)).toBe(true);
  });

  it('the empty name selects the default (first) export', async () => {
    const { size } = await handshakeGo(c, '');
    expect(size).toBe(BigInt(16 * MiB));
  });

  it('ABORT is acknowledged, then the server closes', async () => {
    await c.read(18);
    c.write(Buffer.from([0, 0, 0, 3]));
    c.write(option(2));
    const r = await readOptReply(c);
    expect([r.opt, r.type, r.data.length]).toEqual([2, REP.ACK, 0]);
    expect(await c.waitClosed(2000)).toBe(true);
  });

  it('STARTTLS without TLS configured is ERR_POLICY; STRUCTURED_REPLY with data is ERR_INVALID', async () => {
    await c.read(18);
    c.write(Buffer.from([0, 0, 0, 3]));
    c.write(option(5));
    expect((await readOptReply(c)).type).toBe(REP.ERR_POLICY);
    c.write(option(8, Buffer.from([1])));
    expect((await readOptReply(c)).type).toBe(REP.ERR_INVALID);
  });

  it('closes on a bad option magic and on an option longer than the cap, and survives 200 dropped handshakes', async () => {
    await c.read(18);
    c.write(Buffer.from([0, 0, 0, 3]));
    const bad = option(7, goData('d0'));
    bad.write('XXXXXXXX', 0);
    c.write(bad);
    expect(await c.waitClosed(2000)).toBe(true);
    const c2 = await RawClient.connect(srv.socketPath);
    await c2.read(18);
    c2.write(Buffer.from([0, 0, 0, 3]));
    const h = option(7);
    h.writeUInt32BE(0xffffffff, 12);
    c2.write(h);
    expect(await c2.waitClosed(2000)).toBe(true);
    const drops = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const d = await RawClient.connect(srv.socketPath);
        if (i % 2 === 0) await d.read(18);
        d.close();
      }),
    );
    expect(drops.length).toBe(200);
    await stillServes();
  });

  it('drops a client that stalls in the handshake', async () => {
    await c.read(18);
    expect(await c.waitClosed(4000)).toBe(true);
  });
});
