// `aionbd attach` and `aionbd detach`: kernel devices without nbd-client.
//
// attach reaches a server one of two ways:
// - EXPORT of a running `aionbd serve`: its JSON-RPC nbd_start_disk (-s SOCK). The server
//   serves the device from then on; the command prints the device and exits.
// - --aio FILE[,...]: this process creates the AIO bdev, attaches it and serves it in the
//   foreground until the device is detached (aionbd detach) or a signal arrives; both detach
//   and flush before it exits.
import { Option, type Command } from 'commander';
import { UsageError } from '../errors.js';
import { logger } from '../log.js';
import { detachDevice } from '../nbd/kernel/detach.js';
import { parseNbdDevice } from '../nbd/kernel/devices.js';
import { DEFAULT_TIMEOUT_S, MAX_CONNECTIONS } from '../nbd/kernel/disk.js';
import { rpcCall } from '../rpc/client.js';
import { Server } from '../server.js';
import { formatSize } from '../util/size.js';
import { createSpecBdev } from './aio-create.js';
import { parseAioSpec } from './aio-spec.js';
import { collect, intArg, LOG_LEVELS, powerOfTwoArg } from './args.js';
import { CreatedFiles } from './created-files.js';
import { startCommandLog, type HeldLog } from './held-log.js';
import { logFormatOption, type LogFormat } from './log-format.js';
import { DEFAULT_RPC_SOCKET } from './serve.js';

interface AttachOpts {
  socket: string;
  aio: string[];
  device?: string;
  connections: number;
  timeout: number;
  deadConnTimeout: number;
  blockSize?: number;
  readonly?: boolean;
  ioctl?: boolean;
  logLevel: string;
  logFormat?: LogFormat;
}

export function addAttachCommands(program: Command, out: (line: string) => void): void {
  program
    .command('attach')
    .description(
      "attach an export to this machine's kernel as /dev/nbdN without nbd-client (needs root and the nbd driver); prints the device",
    )
    .argument('[export]', 'the export (or bdev) of the server at --socket; with --aio, default: the first --aio bdev')
    .option('-s, --socket <path>', 'JSON-RPC socket of the running "aionbd serve" that serves EXPORT', DEFAULT_RPC_SOCKET)
    .option(
      '--aio <spec>',
      'serve this AIO bdev (FILE[,name=N][,bs=B][,size=S][,prealloc=P][,readonly]) from this process, in the foreground until detached (repeatable)',
      collect,
      [],
    )
    .option('--device <path>', '/dev/nbdN to use (default: a free one)')
    .option('--connections <n>', "socket connections (the kernel's hardware queues)", intArg(1, MAX_CONNECTIONS), 1)
    .option('--timeout <s>', 'seconds before the kernel fails a request with EIO (0: never)', intArg(0, 86_400), DEFAULT_TIMEOUT_S)
    .option('--dead-conn-timeout <s>', 'seconds I/O waits while a dead connection is replaced (0: fail at once)', intArg(0, 86_400), 0)
    .option(
      '--block-size <b>',
      "logical block size of the device: 512, 1024, 2048 or 4096 (default: the bdev's)",
      powerOfTwoArg(512, 4096, String),
    )
    .option('--readonly', 'attach read-only')
    .option('--ioctl', 'use the ioctl interface instead of netlink (as nbd-client -L)')
    .addOption(new Option('--log-level <level>', 'log level (logs go to stderr)').choices(LOG_LEVELS).default('warn'))
    .addOption(logFormatOption())
    .action(async (name: string | undefined, o: AttachOpts) => {
      // As serve: the start-up's records wait until the device is attached.
      const heldLog = await startCommandLog(o.logLevel, o.logFormat);
      if (o.device !== undefined) parseNbdDevice(o.device);
      if (o.aio.length === 0) {
        heldLog.release(); // nothing is started here to undo
        process.exitCode = await attachRemote(name, o, out);
        return;
      }
      process.exitCode = await attachHere(name, o, out, heldLog);
    });

  program
    .command('detach')
    .description('detach /dev/nbdN, whoever attached it (needs root); its users get EIO for I/O in flight')
    .argument('<device>', '/dev/nbdN')
    .option('-s, --socket <path>', 'ask this "aionbd serve" to detach it (nbd_stop_disk) rather than the kernel directly')
    .option('--ioctl', 'use the ioctl interface instead of netlink')
    .action(async (device: string, o: { socket?: string; ioctl?: boolean }) => {
      parseNbdDevice(device);
      if (o.socket !== undefined) {
        await rpcCall(o.socket, 'nbd_stop_disk', { nbd_device: device }, 60_000);
        return;
      }
      if (!(await detachDevice(device, { netlink: o.ioctl !== true }))) process.stderr.write(`aionbd: ${device} was not attached\n`);
    });
}

async function attachRemote(name: string | undefined, o: AttachOpts, out: (line: string) => void): Promise<number> {
  if (name === undefined) throw new UsageError('name the export to attach, or give --aio FILE to serve one from this process');
  const device = await rpcCall(
    o.socket,
    'nbd_start_disk',
    {
      bdev_name: name,
      nbd_device: o.device,
      num_connections: o.connections,
      timeout: o.timeout,
      dead_conn_timeout: o.deadConnTimeout,
      block_size: o.blockSize,
      readonly: o.readonly,
      netlink: o.ioctl !== true,
    },
    60_000,
  );
  out(String(device));
  return 0;
}

async function attachHere(name: string | undefined, o: AttachOpts, out: (line: string) => void, heldLog: HeldLog): Promise<number> {
  const specs = o.aio.map(parseAioSpec);
  const log = logger();
  const server = new Server({ log });
  let onSignal: (s: NodeJS.Signals) => void = () => undefined;
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = resolve;
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const created = new CreatedFiles();
  let attached = false;
  try {
    for (const s of specs) await createSpecBdev(server, s, created, log);
    const disk = await server.startDisk(name ?? (specs[0]?.name as string), {
      device: o.device,
      connections: o.connections,
      timeout: o.timeout,
      deadConnTimeout: o.deadConnTimeout,
      blockSize: o.blockSize,
      readonly: o.readonly,
      netlink: o.ioctl !== true,
    });
    attached = true;
    heldLog.release();
    out(disk.device);
    process.stderr.write(
      `aionbd: "${disk.export.name}" (${formatSize(disk.export.size)}) is ${disk.device}, ${disk.connections} connection(s) over ${disk.mode}; ` +
        `"aionbd detach ${disk.device}", SIGINT or SIGTERM detaches it\n`,
    );
    const why = await Promise.race([disk.ended.then(() => 'detached'), signalled]);
    log.info({ why }, 'stopping');
  } catch (err) {
    if (!attached) {
      await server.close();
      created.undo();
      heldLog.fail(log.level);
    }
    throw err;
  } finally {
    // Detaches first (users see EIO rather than a dead connection), then flushes and closes.
    await server.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return 0;
}
