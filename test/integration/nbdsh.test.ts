// libnbd's Python bindings drive every command and flag the server advertises.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/run.js';
import { startServer, stopAllServers, type TestServer } from '../helpers/server.js';
import { nbdshEnv, nbdshTool } from '../helpers/tools.js';

const have = nbdshTool();

const SCRIPT = String.raw`
import nbd, errno, os
h.add_meta_context('base:allocation')
h.connect_uri(os.environ['NBD_URI'])
size = h.get_size()
assert size == 32 * 1024 * 1024, size
for f in ('can_flush', 'can_fua', 'can_trim', 'can_zero', 'can_fast_zero', 'can_cache', 'can_df', 'can_multi_conn'):
    assert getattr(h, f)(), f
assert not h.is_read_only()
assert h.can_meta_context('base:allocation')
assert h.get_block_size(nbd.SIZE_MINIMUM) == 1
assert h.get_block_size(nbd.SIZE_MAXIMUM) == 64 * 1024 * 1024
assert h.get_structured_replies_negotiated()

buf = bytes(range(256)) * 256
h.pwrite(buf, 1024 * 1024)
h.pwrite(buf, 2 * 1024 * 1024, nbd.CMD_FLAG_FUA)
assert h.pread(len(buf), 1024 * 1024) == buf
chunks = []
def chunk(sub, off, status, err):
    chunks.append((off, status, bytes(sub)))
    return 0
got = h.pread_structured(len(buf), 2 * 1024 * 1024, chunk, nbd.CMD_FLAG_DF)
assert bytes(got) == buf and len(chunks) == 1 and chunks[0][1] == nbd.READ_DATA, chunks[:1]
# Unaligned, odd sizes.
h.pwrite(b'xyz', 1000001)
assert h.pread(5, 1000000) == b'\0xyz\0'
h.flush()
h.cache(1024 * 1024, 0)
h.zero(4096, 1024 * 1024 + 4096)
h.zero(4096, 1024 * 1024 + 8192, nbd.CMD_FLAG_NO_HOLE)
try:
    h.zero(4096, 1024 * 1024 + 12288, nbd.CMD_FLAG_FAST_ZERO)
except nbd.Error as e:
    assert e.errnum == errno.ENOTSUP, e
assert h.pread(12288, 1024 * 1024 + 4096) == bytes(12288)
h.trim(1024 * 1024, 2 * 1024 * 1024)

# Block status: the written region is data, the rest holes that read as zero.
seen = []
def cb(metacontext, offset, entries, err):
    assert metacontext == 'base:allocation'
    seen.append((offset, list(entries)))
h.block_status(size, 0, cb)
ents = seen[0][1]
assert sum(ents[0::2]) <= size and len(ents) >= 2, ents
assert ents[1] == 3, ents  # hole,zero at the start
seen.clear()
h.block_status(size, 0, cb, nbd.CMD_FLAG_REQ_ONE)
assert len(seen[0][1]) == 2, seen
# Errors come back as errno values.
for bad in (lambda: h.pread(512, size), lambda: h.pwrite(b'x' * 512, size)):
    try:
        bad(); raise SystemExit('no error')
    except nbd.Error as e:
        assert e.errnum in (errno.EINVAL, errno.ENOSPC), e
h.shutdown()
print('ok')
`;

describe.skipIf(!have)('nbdsh (libnbd Python) against every command and flag', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ aio: ['d.img,name=d0,size=32M'] });
  }, 30_000);
  afterAll(async () => {
    await stopAllServers();
  });

  it('runs the script cleanly', async () => {
    const r = await run('nbdsh', ['-c', SCRIPT], { timeoutMs: 60_000, env: { ...(nbdshEnv() ?? process.env), NBD_URI: srv.uri('d0') } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('ok');
  }, 90_000);
});
