// An NbdServer in this process over AIO bdevs in a temp dir, on a unix socket.
import path from 'node:path';
import { createAioBdev } from '../../src/modules/aio/aio.js';
import { BdevRegistry } from '../../src/bdev/registry.js';
import { silentLogger } from '../../src/log.js';
import { NbdServer, type ServerOptions } from '../../src/nbd/server.js';
import { rmrf, tmpDir } from './tmp.js';

export interface TestServer {
  server: NbdServer;
  registry: BdevRegistry;
  dir: string;
  socketPath: string;
  close(): Promise<void>;
}

export async function startInProcess(
  bdevs: { name: string; size: number; readonly?: boolean; blockSize?: number }[] = [{ name: 'd0', size: 16 << 20 }],
  opts: ServerOptions = {},
): Promise<TestServer> {
  const dir = tmpDir();
  const log = silentLogger();
  const registry = new BdevRegistry();
  const server = new NbdServer({ log, ...opts });
  for (const b of bdevs) {
    if (b.readonly === true) {
      // A readonly bdev needs an existing file: create it writable first.
      const w = createAioBdev({ filename: path.join(dir, `${b.name}.img`), name: `${b.name}-init`, size: b.size, log });
      await w.close();
    }
    const bdev = registry.add(
      createAioBdev({
        filename: path.join(dir, `${b.name}.img`),
        name: b.name,
        size: b.size,
        readonly: b.readonly,
        blockSize: b.blockSize,
        log,
      }),
    );
    server.addExport(bdev);
  }
  const socketPath = path.join(dir, 'nbd.sock');
  await server.listen({ kind: 'unix', path: socketPath });
  return {
    server,
    registry,
    dir,
    socketPath,
    async close() {
      await server.close({ graceMs: 1000 });
      await registry.closeAll();
      rmrf(dir);
    },
  };
}
