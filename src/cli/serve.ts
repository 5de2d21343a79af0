// `aionbd serve`: bdevs from flags and a config file, exported on listeners, managed over
// JSON-RPC, until SIGINT/SIGTERM.
import path from 'node:path';
import { checkName } from '../bdev/names.js';
import { ListenError, UsageError } from '../errors.js';
import type { Logger } from '../log.js';
import { parseListenAddress, formatAddress, nbdUri, type ListenAddress } from '../nbd/address.js';
import { DEFAULT_PORT } from '../nbd/constants.js';
import type { Export } from '../nbd/export.js';
import { describeLimits } from '../nbd/limits.js';
import { parseMetricsAddress } from '../metrics/http.js';
import { readConfigFile } from '../rpc/config.js';
import { rpcAddress } from '../rpc/socket.js';
import type { ServerOptions as NbdServerOptions } from '../nbd/server.js';
import { Server } from '../server.js';
import { inheritedFds, stdioStream } from './nbd-options.js';
import { formatSize } from '../util/size.js';
import { checkSocketPath } from '../util/unix-socket.js';
import { createSpecBdev } from './aio-create.js';
import { parseAioSpec, parseUringSpec, type AioSpec } from './aio-spec.js';
import { captiveVariables, PrivateSocket, runCaptive, type CaptiveCommand } from './captive.js';
import { parseRbdSpec, startRbdSpecs } from './rbd-spec.js';
import { CreatedFiles } from './created-files.js';
import type { HeldLog } from './held-log.js';
import { watchParent } from './parent-watch.js';
import { PidFile } from './pidfile.js';

export const DEFAULT_RPC_SOCKET = '/var/tmp/aionbd.sock';

export interface ServeOptions {
  listen: string[];
  aio: string[];
  /** --uring FILE[,...] specs: as --aio, served through io_uring. */
  uring?: string[];
  /** --rbd POOL/IMAGE[,...] specs (rbd-spec.ts). */
  rbd?: string[];
  queueDepth: number | undefined;
  dataDir: string;
  /** JSON-RPC socket; false: none. */
  rpc: string | false;
  /** The --rpc flag was given (a busy socket is then an error, not a warning). */
  rpcExplicit: boolean;
  /** Roots for paths named over RPC; empty: the data directory. */
  allowPath: string[];
  /** A save_config file applied at start (its paths are the operator's own: not restricted). */
  config: string | undefined;
  /** Protocol options: TLS, limits. */
  nbd?: Omit<NbdServerOptions, 'log'>;
  /** Serve one connection on stdin/stdout, then exit. */
  stdio?: boolean;
  /** The destination of `log`, holding the start-up's records until the start succeeds. */
  heldLog?: HeldLog;
  /** Captive mode: run this shell command once serving, stop when it ends, exit with its status. */
  run?: string | undefined;
  /** Write our pid here once listening; removed at exit. */
  pidfile?: string | undefined;
  /** Stop when the process that started us exits. */
  exitWithParent?: boolean | undefined;
  /** --metrics tcp://HOST:PORT: Prometheus metrics over HTTP. */
  metrics?: string | undefined;
}

export const DEFAULT_IMAGE_SIZE = 2 ** 30;

export async function serve(opts: ServeOptions, log: Logger, out: (line: string) => void): Promise<number> {
  const specs: AioSpec[] = [...opts.aio.map(parseAioSpec), ...(opts.uring ?? []).map(parseUringSpec)];
  const rbdSpecs = (opts.rbd ?? []).map(parseRbdSpec);
  const config = opts.config !== undefined ? readConfigFile(opts.config) : undefined;
  if (specs.length === 0 && rbdSpecs.length === 0 && config === undefined) {
    // The embedded default: a sparse 1 GiB image, created on first use.
    specs.push({
      filename: path.join(opts.dataDir, 'disk0.img'),
      name: 'disk0',
      blockSize: undefined,
      size: DEFAULT_IMAGE_SIZE,
      readonly: false,
    });
  }
  if (opts.metrics !== undefined) parseMetricsAddress(opts.metrics);
  if (opts.run !== undefined && opts.stdio === true)
    throw new UsageError('--run and --stdio cannot go together: with --stdio the client is whoever started us');
  const captive = opts.run !== undefined;
  const addrs: ListenAddress[] = opts.listen.map(parseListenAddress);
  if (addrs.length === 0 && !captive) addrs.push(parseListenAddress(`tcp://127.0.0.1:${DEFAULT_PORT}`));
  const names = new Set<string>();
  for (const s of specs) {
    checkName(s.name);
    if (names.has(s.name)) throw new UsageError(`two bdevs are named "${s.name}": give one of them name=...`);
    names.add(s.name);
  }
  const allowPaths = (opts.allowPath.length > 0 ? opts.allowPath : [opts.dataDir]).map((p) => path.resolve(p));
  // Socket paths that cannot work fail the start before any image is created. The default RPC
  // socket is not judged here: a problem with it only costs the RPC (see startRpc).
  for (const a of addrs) if (a.kind === 'unix') checkSocketPath(formatAddress(a), a.path);
  if (opts.rpc !== false && opts.rpcExplicit) checkSocketPath(rpcAddress(path.resolve(opts.rpc)), path.resolve(opts.rpc));
  const pidfile = opts.pidfile !== undefined ? new PidFile(opts.pidfile) : null;
  // Captive with no --listen: a socket only the command is meant to use, in a directory of our own (as nbdkit -U -).
  const privateSocket = captive && addrs.length === 0 ? new PrivateSocket() : null;
  if (privateSocket !== null) addrs.push({ kind: 'unix', path: privateSocket.path });

  const server = new Server({ log, queueDepth: opts.queueDepth, ...(opts.nbd !== undefined ? { nbd: opts.nbd } : {}) });
  log.info({ limits: server.nbd.limits }, describeLimits(server.nbd.limits));
  const inherited = opts.listen.length === 0 && opts.stdio !== true && !captive ? inheritedFds() : [];
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= server.close();
    return stopping;
  };
  // Handlers go in before anything is announced: whoever reads the attach line as "ready" may
  // signal us right away, and that must still be a clean stop.
  let onSignal: (s: NodeJS.Signals) => void = () => undefined;
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = resolve;
  });
  let command: CaptiveCommand | null = null;
  let signals = 0;
  const handler = (sig: NodeJS.Signals): void => {
    opts.heldLog?.release(); // a stop, not a failure: the start-up's records are true
    command?.signal(sig); // captive: the command is asked to stop too; we stop when it has
    if (stopping !== null || signals++ > 0) {
      log.warn('second signal: exiting without waiting');
      process.exit(1);
    }
    onSignal(sig);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  const unwatch =
    opts.exitWithParent === true
      ? watchParent(() => {
          log.info({ parent: 'exited' }, 'the parent process exited (--exit-with-parent)');
          handler('SIGTERM');
        })
      : null;
  const created = new CreatedFiles();
  let started = false;
  try {
    const startup = (async () => {
      if (config !== undefined) await server.loadConfig(config);
      for (const s of specs) {
        await createSpecBdev(server, s, created, log);
        server.addExport(s.name, { description: s.description });
      }
      await startRbdSpecs(server, rbdSpecs);
      const rpc = opts.rpc !== false ? await startRpc(server, opts.rpc, opts.rpcExplicit, allowPaths, log) : null;
      const metrics = opts.metrics !== undefined ? await server.listenMetrics(opts.metrics) : null;
      const bound: ListenAddress[] = [];
      if (opts.stdio === true) return { exports: [], bound, rpc, metrics };
      // Socket activation: systemd's sockets replace the default listener.
      for (const fd of inherited) await server.nbd.listenFd(fd);
      if (inherited.length === 0) for (const a of addrs) bound.push(await server.listen(a));
      return { exports: [...server.nbd.exports()], bound, rpc, metrics };
    })();
    // A signal during start-up stops it as cleanly as one after.
    const first = await Promise.race([startup.then((r) => ({ ready: r })), signalled.then((sig) => ({ sig }))]);
    if ('sig' in first) {
      log.info({ signal: first.sig }, 'signal during start-up; stopping');
      await startup.catch(() => undefined);
      await stop();
      return 0;
    }
    started = true;
    opts.heldLog?.release();
    pidfile?.write();
    if (opts.stdio === true) {
      // One client on stdin/stdout (libnbd's nbd_connect_command): its end is our end.
      const done = server.nbd.accept(stdioStream());
      const ended = await Promise.race([done.then(() => null), signalled]);
      log.info({ signal: ended }, 'stdio client finished; stopping');
      await stop();
      return 0;
    }
    if (opts.run !== undefined) {
      const ready = first.ready;
      const x = ready.exports[0];
      const at = ready.bound[0];
      if (x === undefined || at === undefined)
        throw new UsageError('--run needs an export to give the command: add --aio (--uring) or a config with one');
      if (signals > 0) {
        await stop();
        return 0;
      } // stopped as it started: the command never runs
      const vars = captiveVariables(at, x.name, opts.nbd?.tls?.mode ?? 'off');
      log.info({ uri: vars['uri'], command: opts.run }, 'running the --run command');
      command = runCaptive(opts.run, vars, log);
      const status = await command.exited;
      log.info({ status }, 'the --run command ended; stopping');
      await stop();
      return status;
    }
    // Socket-activated, our stdout is often the activating client's: announce on stderr.
    const say =
      inherited.length > 0
        ? (l: string): void => {
            process.stderr.write(`${l}\n`);
          }
        : out;
    for (const x of first.ready.exports) printAttach(x, first.ready.bound, first.ready.rpc, say, inherited);
    if (first.ready.metrics !== null) say(`aionbd: Prometheus metrics at ${first.ready.metrics}`);
  } catch (err) {
    await stop();
    if (!started) {
      created.undo();
      opts.heldLog?.fail(log.level);
    }
    throw err;
  } finally {
    // Every way out (a signal, the command's end, a failure) passes here; an exit at the second signal does not need to.
    if (stopping !== null) cleanup();
  }

  const signal = await signalled;
  log.info({ signal }, 'shutting down: finishing in-flight I/O, flushing, closing');
  await stop();
  cleanup();
  process.off('SIGINT', handler);
  process.off('SIGTERM', handler);
  return 0;

  function cleanup(): void {
    unwatch?.();
    pidfile?.remove();
    privateSocket?.remove();
  }
}

// The default socket is shared by every server on the machine: when another one holds it (or
// something else stands at its path), this one runs without RPC (and says why) rather than
// refusing to start.
// Returns the socket it listens on, or null.
async function startRpc(server: Server, socket: string, explicit: boolean, allowPaths: string[], log: Logger): Promise<string | null> {
  try {
    await server.listenRpc(socket, allowPaths);
    return socket;
  } catch (err) {
    if (explicit || !(err instanceof ListenError)) throw err;
    log.warn({ socket, reason: err.message }, 'JSON-RPC not started: the default socket cannot be used (give --rpc PATH)');
    return null;
  }
}

function printAttach(x: Export, bound: ListenAddress[], rpc: string | null, out: (line: string) => void, inherited: number[] = []): void {
  const b = x.bdev;
  const where = [...bound.map(formatAddress), ...inherited.map((fd) => `inherited fd ${fd}`)].join(', ');
  out(
    `aionbd: exporting "${x.name}" (${formatSize(x.size)}, ${b.module} bdev, block size ${b.blockSize}${x.readonly ? ', read-only' : ''}) on ${where}`,
  );
  for (const a of bound) {
    const where = a.kind === 'unix' ? `-unix ${a.path}` : `${a.host.includes(':') ? `[${a.host}]` : a.host} ${a.port}`;
    out(`  attach (as root, after "modprobe nbd"): nbd-client ${where} /dev/nbd0 -N ${x.name} -b ${b.blockSize}`);
    out(`  inspect: nbdinfo '${nbdUri(a, x.name)}'`);
  }
  // The kernel attach of our own (nbd_start_disk through this server's JSON-RPC socket).
  if (rpc !== null) out(`  or, as root, without nbd-client: aionbd attach ${x.name}${rpc === DEFAULT_RPC_SOCKET ? '' : ` -s ${rpc}`}`);
}
