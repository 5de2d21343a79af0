// READs and WRITEs as large as clients that negotiate no block sizes send (up to about 48 MiB),
// served by default; a request over the maximum gets EINVAL and the connection goes on. The
// client is libnbd's Python binding with block-size negotiation and its own checks turned off,
// so every request reaches the server as written. libnbd itself never sends more than 64 MiB,
// the default maximum, so a request over that one is sent as raw bytes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain, run } from '../helpers/run.js';
import { startServer, stopAllServers, type TestServer } from '../helpers/server.js';
import { nbdshEnv, nbdshTool } from '../helpers/tools.js';
import { RawClient, handshakeGo, readSimpleReply, request } from '../helpers/wire.js';

const MiB = 2 ** 20;
const CMD = { READ: 0, WRITE: 1 };
const EINVAL = 22;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const havePython = nbdshTool();

// argv: URI. Prints one line per step; any failed assertion exits non-zero with its trace.
const LIBNBD_CLIENT = String.raw`
import nbd, os, sys
MiB = 1 << 20
h = nbd.NBD()
h.set_request_block_size(False)   # negotiates no block sizes, as those clients do
h.set_strict_mode(0)              # no client-side checks: the server decides
h.connect_uri(sys.argv[1])
n = 48 * MiB
data = os.urandom(n)
h.pwrite(data, 4096)
assert h.pread(n, 4096) == data, 'aligned 48 MiB read back differs'
print('aligned 48 MiB ok')
h.pwrite(data, 100 * MiB + 1)
assert h.pread(n, 100 * MiB + 1) == data, 'unaligned 48 MiB read back differs'
print('unaligned 48 MiB ok')
whole = h.pread(64 * MiB, 0)
assert len(whole) == 64 * MiB and whole[4096:4096 + n] == data
print('64 MiB read ok')
`;

// argv: URI. For a server whose maximum is below 48 MiB: both directions refused, then served.
const LIBNBD_OVER_MAX = String.raw`
import nbd, errno, os, sys
MiB = 1 << 20
h = nbd.NBD()
h.set_request_block_size(False)
h.set_strict_mode(0)
h.connect_uri(sys.argv[1])
for name, f in (('write', lambda: h.pwrite(b'\x5a' * (48 * MiB), 0)), ('read', lambda: h.pread(48 * MiB, 0))):
    try:
        f()
        print(name, 'accepted')
    except nbd.Error as e:
        print(name, errno.errorcode.get(e.errnum, e.errnum))
small = os.urandom(65536)
h.pwrite(small, 0)
assert h.pread(len(small), 0) == small
print('still usable')
`;

async function python(script: string, uri: string): Promise<string[]> {
  const r = await run('python3', ['-c', script, uri], { timeoutMs: 120_000, env: nbdshEnv() ?? process.env });
  expect(r.code, explain(r)).toBe(0);
  return r.stdout.trim().split('\n');
}

describe('large requests, default limits', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ aio: ['big.img,name=big,size=256M'] });
  }, 30_000);
  afterAll(async () => {
    await stopAllServers();
  });

  it.skipIf(!havePython)(
    'libnbd without block sizes or strict mode: 48 MiB WRITEs read back the same, aligned or not',
    async () => {
      expect(await python(LIBNBD_CLIENT, srv.uri('big'))).toEqual(['aligned 48 MiB ok', 'unaligned 48 MiB ok', '64 MiB read ok']);
    },
    150_000,
  );

  it('a READ or WRITE over 64 MiB gets EINVAL and the connection stays usable', async () => {
    const c = await RawClient.connect(srv.socketPath as string);
    try {
      await handshakeGo(c, 'big');
      const over = 64 * MiB + 4096;
      c.write(request(CMD.READ, { cookie: 1n, offset: 0, length: over }));
      expect(await readSimpleReply(c, 10_000)).toEqual({ magic: SIMPLE_REPLY_MAGIC, error: EINVAL, cookie: 1n });
      // The refused WRITE's payload is read and dropped: the stream stays in step.
      c.write(request(CMD.WRITE, { cookie: 2n, offset: 0, length: over }));
      const slice = Buffer.alloc(4 * MiB, 0xee);
      for (let sent = 0; sent < over; sent += slice.length) {
        const part = slice.subarray(0, Math.min(slice.length, over - sent));
        if (!c.sock.write(part)) await new Promise((r) => c.sock.once('drain', r));
      }
      expect(await readSimpleReply(c, 30_000)).toEqual({ magic: SIMPLE_REPLY_MAGIC, error: EINVAL, cookie: 2n });
      c.write(request(CMD.READ, { cookie: 3n, offset: 0, length: 4096 }));
      expect(await readSimpleReply(c, 10_000)).toEqual({ magic: SIMPLE_REPLY_MAGIC, error: 0, cookie: 3n });
      // Nothing of the refused WRITE reached the image.
      expect((await c.read(4096, 10_000)).includes(0xee)).toBe(false);
      expect(c.closed).toBe(false);
    } finally {
      c.close();
    }
  }, 60_000);
});

describe('large requests, --max-payload 32M', () => {
  afterAll(async () => {
    await stopAllServers();
  });

  it.skipIf(!havePython)(
    'a 48 MiB WRITE and READ get EINVAL from a server limited to 32M; the connection stays usable',
    async () => {
      const srv = await startServer({ aio: ['small.img,name=small,size=128M'], args: ['--max-payload', '32M'] });
      expect(await python(LIBNBD_OVER_MAX, srv.uri('small'))).toEqual(['write EINVAL', 'read EINVAL', 'still usable']);
    },
    60_000,
  );
});
