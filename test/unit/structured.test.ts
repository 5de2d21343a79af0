import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { Server } from '../../src/server.js';
import { writeBytes } from '../helpers/bdev.js';
import { startInProcess, type TestServer } from '../helpers/inproc.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { RawClient, extRequest, goData, metaData, negotiateOptions, readChunk, readSimpleReply, request } from '../helpers/wire.js';

const MiB = 1 << 20;
const OPT = { GO: 7, STRUCTURED_REPLY: 8, LIST_META: 9, SET_META: 10, EXTENDED_HEADERS: 11, EXPORT_NAME: 1 };
const REP = { ACK: 1, INFO: 3, META: 4, ERR_INVALID: 0x80000003, ERR_EXT_HEADER_REQD: 0x8000000a };
const CMD = { READ: 0, WRITE: 1, FLUSH: 3, TRIM: 4, CACHE: 5, WRITE_ZEROES: 6, BLOCK_STATUS: 7 };
const CHUNK = { NONE: 0, OFFSET_DATA: 1, OFFSET_HOLE: 2, BLOCK_STATUS: 5, BLOCK_STATUS_EXT: 6, ERROR: 32769 };
const STRUCTURED_MAGIC = 0x668e33ef;
const EXTENDED_MAGIC = 0x6e8a278c;

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed) & 0xff || 1;
  return b;
}

function extents(payload: Buffer, ext = false): [number, number][] {
  const out: [number, number][] = [];
  if (ext) {
    const n = payload.readUInt32BE(4);
    for (let i = 0; i < n; i++) out.push([Number(payload.readBigUInt64BE(8 + 16 * i)), Number(payload.readBigUInt64BE(16 + 16 * i))]);
  } else {
    for (let p = 4; p < payload.length; p += 8) out.push([payload.readUInt32BE(p), payload.readUInt32BE(p + 4)]);
  }
  return out;
}

describe('structured replies, metadata contexts and block status', () => {
  let srv: TestServer;
  let c: RawClient;
  beforeEach(async () => {
    srv = await startInProcess([
      { name: 'd0', size: 16 * MiB },
      { name: 'd1', size: 8 * MiB },
    ]);
    c = await RawClient.connect(srv.socketPath);
  });
  afterEach(async () => {
    c.close();
    await srv.close();
  });

  async function goStructured(meta: string[] | null, exportName = 'd0'): Promise<number> {
    const opts: [number, Buffer?][] = [[OPT.STRUCTURED_REPLY]];
    if (meta !== null) opts.push([OPT.SET_META, metaData(exportName, meta)]);
    opts.push([OPT.GO, goData('d0')]);
    const r = await negotiateOptions(c, opts);
    expect(r[0]?.[0]?.type).toBe(REP.ACK);
    const info = (r[r.length - 1] as { type: number; data: Buffer }[]).find((x) => x.type === REP.INFO) as { data: Buffer };
    return info.data.readUInt16BE(10);
  }

  it('READ answers with one OFFSET_DATA chunk with DONE; other commands with simple replies; errors with ERROR chunks', async () => {
    const flags = await goStructured(null);
    expect(flags & 0x0080).toBe(0x0080); // SEND_DF only now
    const data = pattern(4096, 3);
    c.write(request(CMD.WRITE, { cookie: 1n, offset: 8192, payload: data }));
    expect(await readSimpleReply(c)).toEqual({ magic: 0x67446698, error: 0, cookie: 1n });
    c.write(request(CMD.READ, { cookie: 2n, offset: 8192, length: 4096, flags: 4 /* DF */ }));
    const ch = await readChunk(c);
    expect([ch.magic, ch.flags, ch.type, ch.cookie]).toEqual([STRUCTURED_MAGIC, 1, CHUNK.OFFSET_DATA, 2n]);
    expect(ch.payload.readBigUInt64BE(0)).toBe(8192n);
    expect(ch.payload.subarray(8).equals(data)).toBe(true);
    c.write(request(CMD.READ, { cookie: 3n, offset: 16 * MiB, length: 512 }));
    const err = await readChunk(c);
    expect([err.type, err.flags, err.cookie]).toEqual([CHUNK.ERROR, 1, 3n]);
    expect(err.payload.readUInt32BE(0)).toBe(22);
    const msgLen = err.payload.readUInt16BE(4);
    expect(err.payload.length).toBe(6 + msgLen);
    expect(msgLen).toBeGreaterThan(0);
    expect(msgLen).toBeLessThanOrEqual(512);
    c.write(request(CMD.CACHE, { cookie: 4n, offset: 0, length: MiB }));
    expect(await readSimpleReply(c)).toEqual({ magic: 0x67446698, error: 0, cookie: 4n });
  });

  it('sends holes of a large READ as OFFSET_HOLE chunks covering the whole range', async () => {
    await goStructured(null);
    const data = pattern(64 * 1024, 9);
    c.write(request(CMD.WRITE, { cookie: 1n, offset: 4 * MiB + 256 * 1024, payload: data, flags: 1 }));
    await readSimpleReply(c);
    // All hole: one OFFSET_HOLE with DONE.
    c.write(request(CMD.READ, { cookie: 2n, offset: 0, length: MiB }));
    const h = await readChunk(c);
    expect([h.type, h.flags, h.payload.length]).toEqual([CHUNK.OFFSET_HOLE, 1, 12]);
    expect([h.payload.readBigUInt64BE(0), h.payload.readUInt32BE(8)]).toEqual([0n, MiB]);
    // Mixed: chunks in order cover [4M, 5M) exactly, data where we wrote.
    c.write(request(CMD.READ, { cookie: 3n, offset: 4 * MiB, length: MiB }));
    const got = Buffer.alloc(MiB, 0xee);
    let covered = 0;
    for (let i = 0; i < 64; i++) {
      const ch = await readChunk(c);
      const off = Number(ch.payload.readBigUInt64BE(0)) - 4 * MiB;
      if (ch.type === CHUNK.OFFSET_HOLE) {
        got.fill(0, off, off + ch.payload.readUInt32BE(8));
        covered += ch.payload.readUInt32BE(8);
      } else {
        expect(ch.type).toBe(CHUNK.OFFSET_DATA);
        ch.payload.copy(got, off, 8);
        covered += ch.payload.length - 8;
      }
      if (ch.flags & 1) break;
    }
    expect(covered).toBe(MiB);
    const want = Buffer.alloc(MiB);
    data.copy(want, 256 * 1024);
    expect(got.equals(want)).toBe(true);
  });

  it('LIST_META_CONTEXT: none or "base:" lists base:allocation with id 0; unknown namespaces list nothing', async () => {
    const r = await negotiateOptions(c, [
      [OPT.LIST_META, metaData('d0', [])], // before structured replies
      [OPT.STRUCTURED_REPLY],
      [OPT.LIST_META, metaData('d0', [])],
      [OPT.LIST_META, metaData('d0', ['base:'])],
      [OPT.LIST_META, metaData('d0', ['x-foo:bar'])],
      [OPT.LIST_META, Buffer.concat([metaData('d0', ['base:allocation']).subarray(0, 12), Buffer.from([0, 0, 0, 99])])],
    ]);
    expect(r[0]?.[0]?.type).toBe(REP.ERR_INVALID);
    for (const i of [2, 3]) {
      const rr = r[i] as { type: number; data: Buffer }[];
      expect(rr.map((x) => x.type)).toEqual([REP.META, REP.ACK]);
      expect((rr[0] as { data: Buffer }).data.readUInt32BE(0)).toBe(0);
      expect((rr[0] as { data: Buffer }).data.toString('utf8', 4)).toBe('base:allocation');
    }
    expect(r[4]?.map((x) => x.type)).toEqual([REP.ACK]);
    expect(r[5]?.map((x) => x.type)).toEqual([REP.ERR_INVALID]);
  });

  it('BLOCK_STATUS reports holes as 3 and data as 0, REQ_ONE gives one extent, nothing past the end', async () => {
    await goStructured(['base:allocation']);
    c.write(request(CMD.WRITE, { cookie: 1n, offset: 2 * MiB, payload: pattern(MiB, 4), flags: 1 }));
    await readSimpleReply(c);
    c.write(request(CMD.BLOCK_STATUS, { cookie: 2n, offset: 0, length: 16 * MiB }));
    const bs = await readChunk(c);
    expect([bs.type, bs.flags]).toEqual([CHUNK.BLOCK_STATUS, 1]);
    expect(bs.payload.readUInt32BE(0)).toBe(1); // the id SET gave
    expect(extents(bs.payload)).toEqual([
      [2 * MiB, 3],
      [MiB, 0],
      [13 * MiB, 3],
    ]);
    c.write(request(CMD.BLOCK_STATUS, { cookie: 3n, offset: 2 * MiB + 4096, length: 4096, flags: 8 }));
    const one = await readChunk(c);
    expect(extents(one.payload)).toEqual([[4096, 0]]);
    c.write(request(CMD.BLOCK_STATUS, { cookie: 4n, offset: 15 * MiB, length: 2 * MiB }));
    expect((await readChunk(c)).type).toBe(CHUNK.ERROR);
  });

  it('BLOCK_STATUS without a context for this export is EINVAL', async () => {
    await goStructured(['base:allocation'], 'd1'); // selected for d1, then GO d0
    c.write(request(CMD.BLOCK_STATUS, { cookie: 1n, offset: 0, length: 4096 }));
    const e = await readChunk(c);
    expect([e.type, e.payload.readUInt32BE(0)]).toEqual([CHUNK.ERROR, 22]);
  });

  it('FAST_ZERO zeroes by fallocate, or fails fast with ENOTSUP', async () => {
    const flags = await goStructured(null);
    expect(flags & 0x0840).toBe(0x0840);
    c.write(request(CMD.WRITE, { cookie: 1n, offset: 0, payload: pattern(65536, 5) }));
    await readSimpleReply(c);
    c.write(request(CMD.WRITE_ZEROES, { cookie: 2n, offset: 0, length: 65536, flags: 0x10 | 0x02 }));
    const r = await c.read(4);
    // Either a simple reply (success) or an ERROR chunk with ENOTSUP: never anything else.
    if (r.readUInt32BE(0) === 0x67446698) {
      const rest = await c.read(12);
      expect(rest.readUInt32BE(0)).toBe(0);
      c.write(request(CMD.READ, { cookie: 3n, offset: 0, length: 65536 }));
      const d = await readChunk(c);
      expect(d.payload.subarray(8).every((x) => x === 0)).toBe(true);
    } else {
      const rest = await c.read(16);
      const payload = await c.read(rest.readUInt32BE(12));
      expect(payload.readUInt32BE(0)).toBe(95);
    }
  });
});

describe('extended headers', () => {
  let srv: TestServer;
  let c: RawClient;
  beforeEach(async () => {
    srv = await startInProcess([{ name: 'd0', size: 16 * MiB }]);
    c = await RawClient.connect(srv.socketPath);
  });
  afterEach(async () => {
    c.close();
    await srv.close();
  });

  it('negotiates, then speaks 32-byte requests and extended chunks only', async () => {
    const r = await negotiateOptions(c, [
      [OPT.EXTENDED_HEADERS],
      [OPT.STRUCTURED_REPLY],
      [OPT.SET_META, metaData('d0', ['base:allocation'])],
      [OPT.GO, goData('d0')],
    ]);
    expect(r[0]?.[0]?.type).toBe(REP.ACK);
    expect(r[1]?.[0]?.type).toBe(REP.ERR_EXT_HEADER_REQD);
    expect(r[2]?.map((x) => x.type)).toEqual([REP.META, REP.ACK]);
    const data = pattern(8192, 7);
    c.write(extRequest(CMD.WRITE, { cookie: 1n, offset: 4096, payload: data }));
    let ch = await readChunk(c, true);
    expect([ch.magic, ch.flags, ch.type, ch.cookie, ch.offset, ch.payload.length]).toEqual([EXTENDED_MAGIC, 1, CHUNK.NONE, 1n, 4096n, 0]);
    c.write(extRequest(CMD.READ, { cookie: 2n, offset: 4096, length: 8192 }));
    ch = await readChunk(c, true);
    expect([ch.type, ch.flags, ch.offset]).toEqual([CHUNK.OFFSET_DATA, 1, 4096n]);
    expect(ch.payload.subarray(8).equals(data)).toBe(true);
    // A 64-bit effect length for a payload-free command.
    c.write(extRequest(CMD.BLOCK_STATUS, { cookie: 3n, offset: 0, length: 16 * MiB }));
    ch = await readChunk(c, true);
    expect(ch.type).toBe(CHUNK.BLOCK_STATUS_EXT);
    expect(extents(ch.payload, true)).toEqual([
      [4096, 3],
      [8192, 0],
      [16 * MiB - 12288, 3],
    ]);
    // WRITE without PAYLOAD_LEN is invalid (and carries no payload).
    c.write(extRequest(CMD.WRITE, { cookie: 4n, offset: 0, length: 512 }));
    ch = await readChunk(c, true);
    expect([ch.type, ch.payload.readUInt32BE(0)]).toEqual([CHUNK.ERROR, 22]);
    // A payload on a command that takes none is read, dropped, and refused.
    c.write(extRequest(CMD.FLUSH, { cookie: 5n, payload: Buffer.alloc(100) }));
    ch = await readChunk(c, true);
    expect([ch.cookie, ch.type]).toEqual([5n, CHUNK.ERROR]);
    c.write(extRequest(CMD.FLUSH, { cookie: 6n }));
    ch = await readChunk(c, true);
    expect([ch.cookie, ch.type]).toEqual([6n, CHUNK.NONE]);
  });

  it('EXPORT_NAME after extended headers closes the connection', async () => {
    await negotiateOptions(c, [[OPT.EXTENDED_HEADERS]]);
    c.write(Buffer.concat([Buffer.from('IHAVEOPT'), Buffer.from([0, 0, 0, 1, 0, 0, 0, 2]), Buffer.from('d0')]));
    expect(await c.waitClosed(2000)).toBe(true);
  });
});

describe('qemu:allocation-depth on an lvol export', () => {
  let s: Server;
  let dir: string;
  let c: RawClient;
  beforeEach(async () => {
    dir = tmpDir();
    s = new Server({ log: silentLogger() });
    await s.createMalloc({ name: 'm', blockSize: 4096, numBlocks: (32 * MiB) / 4096 });
    await s.createLvstore('m', 'lvs', MiB);
    const lv = s.bdevs.get(await s.createLvol({ lvsName: 'lvs', lvolName: 'v', sizeMib: 8, thin: true }));
    await writeBytes(lv, 2 * MiB, pattern(4096, 1));
    await s.snapshotLvol('lvs/v', 'snap');
    await writeBytes(lv, 5 * MiB, pattern(4096, 2));
    s.addExport('lvs/v', { name: 'v' });
    await s.createMalloc({ name: 'm2', blockSize: 4096, numBlocks: 256 });
    s.addExport('m2'); // not an lvol: base:allocation only
    await s.listen(`unix:${dir}/nbd.sock`);
    c = await RawClient.connect(`${dir}/nbd.sock`);
  });
  afterEach(async () => {
    c.close();
    await s.close();
    rmrf(dir);
  });

  const names = (r: { type: number; data: Buffer }[]): [number, string][] =>
    r.filter((x) => x.type === REP.META).map((x) => [x.data.readUInt32BE(0), x.data.toString('utf8', 4)]);

  it('is listed (none, "qemu:" or its name), selected with its own id, and answered in a chunk of its own', async () => {
    const r = (await negotiateOptions(c, [
      [OPT.STRUCTURED_REPLY],
      [OPT.LIST_META, metaData('v', [])],
      [OPT.LIST_META, metaData('v', ['qemu:'])],
      [OPT.LIST_META, metaData('m2', [])],
      [OPT.SET_META, metaData('v', ['qemu:'])], // a wildcard selects nothing
      [OPT.SET_META, metaData('v', ['qemu:allocation-depth', 'base:allocation', 'qemu:dirty-bitmap:x'])],
      [OPT.GO, goData('v')],
    ])) as { type: number; data: Buffer }[][];
    expect(names(r[1] ?? [])).toEqual([
      [0, 'base:allocation'],
      [0, 'qemu:allocation-depth'],
    ]);
    expect(names(r[2] ?? [])).toEqual([[0, 'qemu:allocation-depth']]);
    expect(names(r[3] ?? [])).toEqual([[0, 'base:allocation']]);
    expect(names(r[4] ?? [])).toEqual([]);
    expect(names(r[5] ?? [])).toEqual([
      [1, 'base:allocation'],
      [2, 'qemu:allocation-depth'],
    ]);
    c.write(request(CMD.BLOCK_STATUS, { cookie: 1n, offset: 0, length: 8 * MiB }));
    const first = await readChunk(c),
      second = await readChunk(c);
    expect([first.type, first.flags, second.type, second.flags]).toEqual([CHUNK.BLOCK_STATUS, 0, CHUNK.BLOCK_STATUS, 1]);
    const byId = new Map([first, second].map((ch) => [ch.payload.readUInt32BE(0), extents(ch.payload)]));
    expect(byId.get(1)).toEqual([
      [2 * MiB, 3],
      [MiB, 0],
      [2 * MiB, 3],
      [MiB, 0],
      [2 * MiB, 3],
    ]);
    expect(byId.get(2)).toEqual([
      [2 * MiB, 0],
      [MiB, 2],
      [2 * MiB, 0],
      [MiB, 1],
      [2 * MiB, 0],
    ]);
    // REQ_ONE: one extent per context.
    c.write(request(CMD.BLOCK_STATUS, { cookie: 2n, offset: 2 * MiB + 4096, length: 4 * MiB, flags: 8 }));
    const one = [await readChunk(c), await readChunk(c)].map((ch) => [ch.payload.readUInt32BE(0), extents(ch.payload)]);
    expect(one).toEqual([
      [1, [[MiB - 4096, 0]]],
      [2, [[MiB - 4096, 2]]],
    ]);
  });
});
