// The embedded API, used as the README shows, releases everything it opened on close():
// every file descriptor (images, sockets, eventfds) and every kernel AIO context.
import fs from 'node:fs';
import { aioContexts } from '../helpers/aio.js';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Server, rpcCall, silentLogger, IoType, newIo } from '../../src/index.js';
import { handshakeGo, RawClient, readSimpleReply, request } from '../helpers/wire.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';

function openFds(): string[] {
  return fs
    .readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return `${fd} -> ${fs.readlinkSync(`/proc/self/fd/${fd}`)}`;
      } catch {
        return `${fd} -> ?`;
      }
    })
    .sort();
}
function aioNr(): number {
  return aioContexts();
}

describe('embedded API', () => {
  it('creates, exports, serves, reports and closes, leaving no fd or AIO context behind', async () => {
    const dir = tmpDir();
    try {
      const fdsBefore = openFds();
      const aioBefore = aioNr();

      const server = new Server({ log: silentLogger() });
      await server.createAio({ filename: path.join(dir, 'd.img'), name: 'd0', size: 64 * 2 ** 20 });
      await server.createAio({ filename: path.join(dir, 'e.img'), name: 'd1', size: 64 * 2 ** 20 });
      await server.createRaid({ name: 'r0', raidLevel: 'raid0', baseBdevs: ['d0', 'd1'], stripSizeKb: 64 });
      await server.createError('r0');
      await server.createMalloc({ name: 'm0', blockSize: 4096, numBlocks: 1024 });
      server.addExport('EE_r0', { name: 'disk' });
      server.addExport('m0');
      const nbdSock = path.join(dir, 'nbd.sock');
      await server.listen(`unix:${nbdSock}`);
      await server.listen('tcp://127.0.0.1:0');
      await server.listenRpc(path.join(dir, 'rpc.sock'), [dir]);
      expect(aioNr()).toBeGreaterThan(aioBefore);

      // A client writes through NBD; a fault injected in-process reaches it as EIO.
      const c = await RawClient.connect(nbdSock);
      expect((await handshakeGo(c, 'disk')).size).toBe(128n * 2n ** 20n);
      c.write(request(1, { cookie: 1n, offset: 0, payload: Buffer.alloc(128 * 1024, 7) }));
      expect((await readSimpleReply(c)).error).toBe(0);
      server.injectError('EE_r0', { ioType: 'read', errorType: 'failure', num: 1 });
      c.write(request(0, { cookie: 2n, offset: 0, length: 4096 }));
      expect(await readSimpleReply(c)).toMatchObject({ cookie: 2n, error: 5 }); // NBD_EIO
      // The same server answers JSON-RPC, and in-process calls.
      expect(await rpcCall(path.join(dir, 'rpc.sock'), 'bdev_get_iostat', { name: 'EE_r0' })).toMatchObject({
        bdevs: [{ num_write_ops: 1, io_error: { failed: 1 } }],
      });
      expect(await server.call('nbd_get_exports')).toHaveLength(2);
      expect(server.iostat({ names: ['d0', 'd1'] })).toMatchObject({ bdevs: [{ num_write_ops: 1 }, { num_write_ops: 1 }] });

      // An I/O in flight when close() starts completes before close() resolves.
      let result: number | null = null;
      const io = newIo((x) => {
        result = x.result;
      });
      io.type = IoType.Flush;
      server.bdevs.get('m0').submit(io);
      await server.close();
      expect(result).toBe(0);
      c.close();
      await new Promise((r) => setImmediate(r));

      expect(aioNr()).toBe(aioBefore);
      expect(openFds()).toEqual(fdsBefore);
      expect(fs.existsSync(nbdSock)).toBe(false);
      expect(fs.existsSync(path.join(dir, 'rpc.sock'))).toBe(false);
      await server.close(); // idempotent
    } finally {
      rmrf(dir);
    }
  });
});
