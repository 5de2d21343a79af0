import { describe, expect, it } from 'vitest';
import { RequestFramer, type RequestSink } from '../../src/nbd/framing.js';
import { NBD_CMD } from '../../src/nbd/constants.js';
import { request } from '../helpers/wire.js';

interface Parsed {
  type: number;
  flags: number;
  cookie: string;
  offset: number;
  length: number;
  payload?: string;
}

/** Runs chunks through a framer with `slots` free slots (refilled when the caller says). */
function framed(chunks: Buffer[], opts: { slots?: number; limit?: number } = {}): { reqs: Parsed[]; errors: string[] } {
  const reqs: Parsed[] = [];
  const errors: string[] = [];
  let payload: Buffer | null = null;
  let free = opts.slots ?? 1000;
  const sink: RequestSink = {
    hasFreeSlot: () => free > 0,
    request(type, flags, src, at, offset, length, hasPayload) {
      free--;
      reqs.push({ type, flags, cookie: src.subarray(at, at + 8).toString('hex'), offset, length });
      if (hasPayload) {
        payload = Buffer.alloc(length);
        return payload;
      }
      return null;
    },
    payloadDone() {
      (reqs[reqs.length - 1] as Parsed).payload = (payload as Buffer).toString('hex');
    },
    protocolError(reason) {
      errors.push(reason);
    },
  };
  const f = new RequestFramer(sink, opts.limit ?? 64 << 20);
  for (const c of chunks) {
    let rest = c;
    for (let guard = 0; rest.length > 0 && guard < 10_000; guard++) {
      const used = f.push(rest);
      if (f.stopped) break;
      rest = rest.subarray(used);
      if (rest.length > 0 || used === 0) {
        free += 1;
        f.resume();
      } // a slot frees up
    }
  }
  return { reqs, errors };
}

const pat = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff));

describe('request framing', () => {
  const wire = Buffer.concat([
    request(NBD_CMD.READ, { cookie: 0xffffffffffffffffn, offset: 0, length: 4096 }),
    request(NBD_CMD.WRITE, { cookie: 2n ** 53n + 1n, offset: 4096, payload: pat(512), flags: 1 }),
    request(NBD_CMD.FLUSH, { cookie: 7n }),
    request(NBD_CMD.WRITE, { cookie: 8n, offset: 2n ** 40n, payload: pat(33) }),
    request(NBD_CMD.DISC, { cookie: 0n }),
  ]);

  it('parses headers in place: types, flags, cookies, offsets, lengths, payloads', () => {
    const { reqs, errors } = framed([wire]);
    expect(errors).toEqual([]);
    expect(reqs).toEqual([
      { type: 0, flags: 0, cookie: 'ffffffffffffffff', offset: 0, length: 4096 },
      { type: 1, flags: 1, cookie: '0020000000000001', offset: 4096, length: 512, payload: pat(512).toString('hex') },
      { type: 3, flags: 0, cookie: '0000000000000007', offset: 0, length: 0 },
      { type: 1, flags: 0, cookie: '0000000000000008', offset: 2 ** 40, length: 33, payload: pat(33).toString('hex') },
      { type: 2, flags: 0, cookie: '0000000000000000', offset: 0, length: 0 },
    ]);
  });

  it('parses the same requests wherever the stream is cut, and byte by byte', () => {
    const want = framed([wire]);
    for (let cut = 1; cut < wire.length; cut++) {
      expect(framed([wire.subarray(0, cut), wire.subarray(cut)])).toEqual(want);
    }
    expect(framed([...wire].map((b) => Buffer.of(b)))).toEqual(want);
  });

  it('stops at an empty slot pool and resumes without losing bytes', () => {
    expect(framed([wire], { slots: 1 })).toEqual(framed([wire]));
    expect(
      framed(
        [...wire].map((b) => Buffer.of(b)),
        { slots: 1 },
      ),
    ).toEqual(framed([wire]));
  });

  it('reports a bad magic and parses nothing after it', () => {
    const bad = Buffer.from(request(NBD_CMD.READ, { length: 512 }));
    bad.writeUInt32BE(0x12345678, 0);
    const { reqs, errors } = framed([Buffer.concat([request(NBD_CMD.FLUSH), bad, request(NBD_CMD.FLUSH)])]);
    expect(reqs.length).toBe(1);
    expect(errors).toEqual(['bad request magic']);
  });

  it('refuses to read a WRITE payload beyond the discard limit', () => {
    const { reqs, errors } = framed([request(NBD_CMD.WRITE, { length: 0xffffffff })], { limit: 64 << 20 });
    expect(reqs).toEqual([]);
    expect(errors[0]).toMatch(/payload of 4294967295 bytes/);
  });
});
