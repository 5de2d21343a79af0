// The aionbd command line. Expected failures end as one line on stderr and an exit code
// (0 ok, 1 runtime failure, 2 bad usage); anything else is a bug and keeps its stack.
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { AionbdError } from '../errors.js';
import { logger } from '../log.js';
import { native } from '../native.js';
import { packageVersion } from '../version.js';
import { collect, intArg, LOG_LEVELS } from './args.js';
import { addAttachCommands } from './attach.js';
import { logFailure, startCommandLog } from './held-log.js';
import { logFormatOption, type LogFormat } from './log-format.js';
import { addIostatCommand } from './iostat.js';
import { addRpcCommand } from './rpc.js';
import { addNbdOptions, serverOptionsFrom, type NbdCliOptions } from './nbd-options.js';
import { DEFAULT_RPC_SOCKET, serve } from './serve.js';

function buildProgram(out: (line: string) => void): Command {
  const program = new Command('aionbd')
    .description('NBD server for SPDK-style block devices served through Linux kernel AIO')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    // Set before subcommands are added: commander copies these into each one at creation.
    .exitOverride()
    // `aionbd rpc METHOD -b x`: options after the method belong to it, not to us.
    .enablePositionalOptions()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      writeOut: (s) => process.stdout.write(s),
      // commander's own usage errors ("error: unknown option ...") read like ours.
      outputError: (s, write) => write(oneLine(s)),
    });

  const serveCmd = program
    .command('serve')
    .description('serve bdevs over NBD (default: a sparse 1 GiB image ./aionbd-data/disk0.img as "disk0" on tcp://127.0.0.1:10809)')
    .option('--listen <addr>', 'listen on tcp://HOST:PORT or unix:PATH (repeatable)', collect, [])
    .option(
      '--aio <spec>',
      'AIO bdev FILE[,name=N][,bs=B][,size=S][,readonly][,description=D], exported under its name (repeatable)',
      collect,
      [],
    )
    .option(
      '--uring <spec>',
      'io_uring bdev, the same spec as --aio (FILE[,name=N][,bs=B][,size=S][,readonly][,description=D]), exported under its name (repeatable)',
      collect,
      [],
    )
    .option(
      '--rbd <spec>',
      'RBD bdev POOL/IMAGE[,conf=FILE][,id=USER][,keyfile=FILE][,name=N][,bs=B][,readonly][,timeout=SEC], exported under its name (repeatable)',
      collect,
      [],
    )
    .option('--queue-depth <n>', 'kernel AIO queue depth per bdev', (v) => intArg(1, native().constants.aio.MAX_CONTEXT_EVENTS)(v))
    .option('--data-dir <dir>', 'where the default image lives', 'aionbd-data')
    .option('--rpc <path>', `JSON-RPC unix socket, mode 0600 (default ${DEFAULT_RPC_SOCKET})`)
    .option('--no-rpc', 'serve no JSON-RPC socket')
    .option('--allow-path <dir>', 'where files named over JSON-RPC may live (repeatable; default: the data directory)', collect, [])
    .option('--config <file>', 'bdevs and exports to create at start, in save_config format')
    .option(
      '--run <command>',
      "captive mode: run COMMAND with sh once serving ($uri, $socket, $export, as nbdkit's --run), stop when it ends and exit with its status; without --listen, serve on a private unix socket",
    )
    .option('--pidfile <file>', 'write the process id to FILE once listening; removed at exit')
    .option('--exit-with-parent', 'stop (as on SIGTERM) when the process that started aionbd exits')
    .option('--metrics <addr>', 'serve Prometheus metrics over HTTP on tcp://HOST:PORT (GET /metrics)')
    .addOption(new Option('--log-level <level>', 'log level (logs go to stderr)').choices(LOG_LEVELS).default('info'))
    .addOption(logFormatOption());
  addNbdOptions(serveCmd).action(
    async (
      o: NbdCliOptions & {
        listen: string[];
        aio: string[];
        uring: string[];
        rbd: string[];
        queueDepth?: number;
        dataDir: string;
        logLevel: string;
        logFormat?: LogFormat;
        rpc?: string | boolean;
        allowPath: string[];
        config?: string;
        run?: string;
        pidfile?: string;
        exitWithParent?: boolean;
        metrics?: string;
      },
    ) => {
      // Captive, the command's output is what the user reads: ours is quieter unless asked for.
      const level = o.run !== undefined && serveCmd.getOptionValueSource('logLevel') === 'default' ? 'warn' : o.logLevel;
      // The start-up's records wait until it succeeds: a failed start ends with its one line.
      const heldLog = await startCommandLog(level, o.logFormat);
      // With --stdio, stdout is the NBD stream; a captive server is private to its command: no
      // RPC socket for either unless one is asked for.
      const rpcDefault = o.stdio === true || o.run !== undefined ? false : DEFAULT_RPC_SOCKET;
      const code = await serve(
        {
          listen: o.listen,
          aio: o.aio,
          uring: o.uring,
          rbd: o.rbd,
          queueDepth: o.queueDepth,
          dataDir: path.resolve(o.dataDir),
          rpc: o.rpc === false ? false : typeof o.rpc === 'string' ? o.rpc : rpcDefault,
          rpcExplicit: typeof o.rpc === 'string',
          allowPath: o.allowPath,
          config: o.config,
          nbd: serverOptionsFrom(o),
          stdio: o.stdio === true,
          heldLog,
          metrics: o.metrics,
          run: o.run,
          pidfile: o.pidfile,
          exitWithParent: o.exitWithParent === true,
        },
        logger(),
        out,
      );
      process.exitCode = code;
    },
  );
  addRpcCommand(program, out);
  addIostatCommand(program, out);
  addAttachCommands(program, out);
  return program;
}

export async function run(argv: string[], out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<number> {
  process.exitCode = 0;
  // commander answers a bare "aionbd" with its help on stderr: a usage error should be one line.
  if (argv.length <= 2) {
    process.stderr.write('aionbd: give a command: serve, rpc, attach or detach ("aionbd --help" says more)\n');
    return 2;
  }
  const program = buildProgram(out);
  // commander answers "help NOSUCH" with the whole help text, on stderr: a usage error is one line.
  if (argv[2] === 'help' && argv[3] !== undefined && !program.commands.some((c) => c.name() === argv[3])) {
    process.stderr.write(`aionbd: no command "${argv[3]}" to help with (commands: ${program.commands.map((c) => c.name()).join(', ')})\n`);
    return 2;
  }
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2; // commander printed why
    if (!(err instanceof AionbdError)) throw err;
    // The line comes last: it is what a failed command ends with, whatever the log level.
    logFailure(err);
    process.stderr.write(`aionbd: ${err.message}\n`);
    return err.exitCode;
  }
}

/**
 * commander's message as one of ours: "error: unknown command 'serv'\n(Did you mean serve?)\n"
 * becomes "aionbd: unknown command 'serv' (did you mean serve?)\n".
 */
export function oneLine(message: string): string {
  const text = message
    .replace(/^error: /, '')
    .replace(/\s*\n\(Did you mean ([^)]*)\)/, ' (did you mean $1)')
    .trimEnd();
  return `aionbd: ${text.replace(/\s*\n\s*/g, ' ')}\n`;
}
