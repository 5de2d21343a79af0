// The NBD protocol flags of `aionbd serve`: TLS, limits, --stdio and socket activation.
import fs from 'node:fs';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { MAX_CONNECTIONS_CAP, RESERVED_FDS } from '../nbd/admission.js';
import { DEFAULT_MEMORY_BUDGET, MIN_MEMORY_BUDGET } from '../nbd/budget.js';
import { DEFAULT_MAX_PAYLOAD } from '../nbd/constants.js';
import type { TlsMode } from '../nbd/handshake.js';
import type { ServerOptions } from '../nbd/server.js';
import { loadTls } from '../nbd/tls.js';
import { formatSize, parseSize } from '../util/size.js';
import { intArg, powerOfTwoArg, secondsArg } from './args.js';

export interface NbdCliOptions {
  tls?: TlsMode;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsPsk?: string;
  maxPayload?: number;
  memoryBudget?: number;
  handshakeTimeout?: number;
  maxConnections?: number;
  maxConnectionsPerClient?: number;
  idleTimeout?: number;
  extendedHeaders: boolean;
  stdio?: boolean;
}

export function addNbdOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--tls <mode>', 'STARTTLS: off, on (offered), require (default "require" when credentials are given)').choices([
        'off',
        'on',
        'require',
      ]),
    )
    .option('--tls-cert <file>', 'X.509 server certificate (PEM)')
    .option('--tls-key <file>', 'X.509 server key (PEM)')
    .option('--tls-ca <file>', 'CA certificate(s): clients must present a certificate they signed (or prove a --tls-psk identity)')
    .option('--tls-psk <file>', 'pre-shared keys, "identity:hexkey" lines (psktool format); with --tls-cert it needs --tls-ca')
    .option(
      '--max-payload <size>',
      `largest READ/WRITE payload, advertised to clients (power of two, default ${formatSize(DEFAULT_MAX_PAYLOAD)})`,
      powerOfTwoArg(4096, 2 ** 31, formatSize),
    )
    .option(
      '--memory-budget <size>',
      `bytes of request buffers and queued replies in flight, server-wide (default ${formatSize(DEFAULT_MEMORY_BUDGET)})`,
      budgetArg,
    )
    .option('--handshake-timeout <seconds>', 'drop clients that have not finished the handshake (default 10)', secondsArg(0.001, 3600))
    .option(
      '--max-connections <n>',
      `connections at once (default: (open-file limit - ${RESERVED_FDS}) / 2, after raising the soft RLIMIT_NOFILE to the hard one; the start-up log says the values)`,
      intArg(1, MAX_CONNECTIONS_CAP),
    )
    .option(
      '--max-connections-per-client <n>',
      'connections at once from one TCP client address (default 256; unix-socket clients count only toward --max-connections)',
      intArg(1, 1_000_000),
    )
    .option(
      '--idle-timeout <seconds>',
      'close connections with no request in flight for this long (default 0: never; the kernel keeps idle connections while a device is attached)',
      secondsArg(0, 2_000_000),
    )
    .option('--no-extended-headers', 'do not offer NBD_OPT_EXTENDED_HEADERS')
    .option('--stdio', 'serve one connection on stdin/stdout, then exit (for nbd_connect_command)');
}

function budgetArg(v: string): number {
  const bad = `must be a size of at least ${formatSize(MIN_MEMORY_BUDGET)} (e.g. 256M, 1G)`;
  let n: number;
  try {
    n = parseSize(v);
  } catch {
    throw new InvalidArgumentError(bad);
  }
  if (!Number.isSafeInteger(n) || n < MIN_MEMORY_BUDGET) throw new InvalidArgumentError(bad);
  return n;
}

/** Server options from the flags; TLS files are read and checked here, so a bad one or a contradiction is a usage error at start. */
export function serverOptionsFrom(o: NbdCliOptions): ServerOptions {
  const tls = loadTls({ mode: o.tls, cert: o.tlsCert, key: o.tlsKey, ca: o.tlsCa, psk: o.tlsPsk });
  return {
    tls,
    extendedHeaders: o.extendedHeaders,
    // A daemon that holds thousands of sockets takes the open-file limit the system allows it.
    raiseFileLimit: true,
    ...(o.maxPayload !== undefined ? { maxPayload: o.maxPayload } : {}),
    ...(o.memoryBudget !== undefined ? { memoryBudget: o.memoryBudget } : {}),
    ...(o.handshakeTimeout !== undefined ? { handshakeTimeoutMs: Math.round(o.handshakeTimeout * 1000) } : {}),
    ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}),
    ...(o.maxConnectionsPerClient !== undefined ? { maxConnectionsPerClient: o.maxConnectionsPerClient } : {}),
    ...(o.idleTimeout !== undefined ? { idleTimeoutMs: Math.round(o.idleTimeout * 1000) } : {}),
  };
}

/** stdin/stdout as one stream: the socket itself when libnbd hands us a socketpair, else both pipes. */
export function stdioStream(): Duplex {
  if (fs.fstatSync(0).isSocket()) return new net.Socket({ fd: 0, readable: true, writable: true, allowHalfOpen: true });
  return Duplex.from({ readable: process.stdin, writable: process.stdout });
}

/** Listening sockets passed by systemd (LISTEN_FDS, LISTEN_PID), starting at fd 3. */
export function inheritedFds(env: NodeJS.ProcessEnv = process.env): number[] {
  const pid = Number(env['LISTEN_PID']);
  const n = Number(env['LISTEN_FDS']);
  if (!Number.isInteger(n) || n <= 0 || pid !== process.pid) return [];
  return Array.from({ length: n }, (_, i) => 3 + i);
}
