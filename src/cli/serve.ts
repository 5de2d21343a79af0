// `aionbd serve`: bdevs from flags, exported on listeners, until SIGINT/SIGTERM.
import path from 'node:path';
import { createAioBdev, DEFAULT_QUEUE_DEPTH } from '../bdev/aio.js';
import { BdevRegistry } from '../bdev/registry.js';
import { UsageError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseListenAddress, formatAddress, nbdUri, type ListenAddress } from '../nbd/address.js';
import { DEFAULT_PORT } from '../nbd/constants.js';
import type { Export } from '../nbd/export.js';
import { NbdServer } from '../nbd/server.js';
import { formatSize } from '../util/size.js';
import { parseAioSpec, type AioSpec } from './aio-spec.js';

export interface ServeOptions {
  listen: string[];
  aio: string[];
  queueDepth: number | undefined;
  dataDir: string;
}

export const DEFAULT_IMAGE_SIZE = 2 ** 30;

export async function serve(opts: ServeOptions, log: Logger, out: (line: string) => void): Promise<number> {
  const specs: AioSpec[] = opts.aio.map(parseAioSpec);
  if (specs.length === 0) {
    // The embedded default: a sparse 1 GiB image, created on first use.
    specs.push({ filename: path.join(opts.dataDir, 'disk0.img'), name: 'disk0', blockSize: undefined, size: DEFAULT_IMAGE_SIZE, readonly: false });
  }
  const addrs: ListenAddress[] = (opts.listen.length > 0 ? opts.listen : [`tcp://127.0.0.1:${DEFAULT_PORT}`]).map(parseListenAddress);
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name)) throw new UsageError(`two bdevs are named "${s.name}": give one of them name=...`);
    names.add(s.name);
  }

  const registry = new BdevRegistry();
  const server = new NbdServer({ log });
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await server.close();
      await registry.closeAll();
    })();
    return stopping;
  };
  // Handlers go in before anything is announced: whoever reads the attach line as "ready" may
  // signal us right away, and that must still be a clean stop.
  let onSignal: (s: NodeJS.Signals) => void = () => undefined;
  const signalled = new Promise<NodeJS.Signals>((resolve) => { onSignal = resolve; });
  const handler = (sig: NodeJS.Signals): void => {
    if (stopping !== null) { log.warn('second signal: exiting without waiting'); process.exit(1); }
    onSignal(sig);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  try {
    const startup = (async () => {
      const exports: Export[] = [];
      for (const s of specs) {
        const bdev = registry.add(createAioBdev({
          filename: s.filename, name: s.name, blockSize: s.blockSize, size: s.size, readonly: s.readonly,
          queueDepth: opts.queueDepth ?? DEFAULT_QUEUE_DEPTH, log,
        }));
        exports.push(server.addExport(bdev));
      }
      const bound: ListenAddress[] = [];
      for (const a of addrs) bound.push(await server.listen(a));
      return { exports, bound };
    })();
    // A signal during start-up stops it as cleanly as one after.
    const first = await Promise.race([startup.then((r) => ({ ready: r })), signalled.then((sig) => ({ sig }))]);
    if ('sig' in first) {
      log.info({ signal: first.sig }, 'signal during start-up; stopping');
      await startup.catch(() => undefined);
      await stop();
      return 0;
    }
    for (const x of first.ready.exports) printAttach(x, first.ready.bound, out);
  } catch (err) {
    await stop();
    throw err;
  }

  const signal = await signalled;
  log.info({ signal }, 'shutting down: finishing in-flight I/O, flushing, closing');
  await stop();
  process.off('SIGINT', handler);
  process.off('SIGTERM', handler);
  return 0;
}

function printAttach(x: Export, bound: ListenAddress[], out: (line: string) => void): void {
  const b = x.bdev;
  out(`aionbd: exporting "${x.name}" (${formatSize(x.size)}, ${b.module} bdev, block size ${b.blockSize}${x.readonly ? ', read-only' : ''}) on ${bound.map(formatAddress).join(', ')}`);
  for (const a of bound) {
    const where = a.kind === 'unix' ? `-unix ${a.path}` : `${a.host.includes(':') ? `[${a.host}]` : a.host} ${a.port}`;
    out(`  attach (as root, after "modprobe nbd"): nbd-client ${where} /dev/nbd0 -N ${x.name} -b ${b.blockSize}`);
    out(`  inspect: nbdinfo '${nbdUri(a, x.name)}'`);
  }
}
