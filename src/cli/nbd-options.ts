// The NBD protocol flags of `aionbd serve`: TLS, limits, --stdio and socket activation.
import fs from 'node:fs';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { TlsMode } from '../nbd/handshake.js';
import type { ServerOptions } from '../nbd/server.js';
import { loadTls } from '../nbd/tls.js';
import { parseSize } from '../util/size.js';

export interface NbdCliOptions {
  tls?: TlsMode;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tlsPsk?: string;
  maxPayload?: number;
  handshakeTimeout?: number;
  maxConnections?: number;
  maxConnectionsPerClient?: number;
  idleTimeout?: number;
  extendedHeaders: boolean;
  stdio?: boolean;
}

function sizeArg(v: string): number {
  try { return parseSize(v, 'size'); } catch (e) { throw new InvalidArgumentError((e as Error).message); }
}

function positive(max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || n > max) throw new InvalidArgumentError(`must be a number above 0 and at most ${max}`);
    return n;
  };
}

function atLeastZero(max: number) {
  return (v: string): number => {
    const n = v.trim() === '' ? NaN : Number(v);
    if (!Number.isFinite(n) || n < 0 || n > max) throw new InvalidArgumentError(`must be a number from 0 to ${max}`);
    return n;
  };
}

export function addNbdOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--tls <mode>', 'STARTTLS: off, on (offered), require (default "require" when credentials are given)').choices(['off', 'on', 'require']))
    .option('--tls-cert <file>', 'X.509 server certificate (PEM)')
    .option('--tls-key <file>', 'X.509 server key (PEM)')
    .option('--tls-ca <file>', 'CA certificate(s): clients must present a certificate they signed (or prove a --tls-psk identity)')
    .option('--tls-psk <file>', 'pre-shared keys, "identity:hexkey" lines (psktool format); with --tls-cert it needs --tls-ca')
    .option('--max-payload <size>', 'largest READ/WRITE payload (power of two, default 32M)', sizeArg)
    .option('--handshake-timeout <seconds>', 'drop clients that have not finished the handshake (default 10)', positive(3600))
    .option('--max-connections <n>', 'connections at once (default 1024)', positive(1_000_000))
    .option('--max-connections-per-client <n>', 'connections at once from one TCP client address (default 256; unix-socket clients count only toward --max-connections)', positive(1_000_000))
    .option('--idle-timeout <seconds>', 'close connections with no request in flight for this long (default 0: never; the kernel keeps idle connections while a device is attached)', atLeastZero(2_000_000))
    .option('--no-extended-headers', 'do not offer NBD_OPT_EXTENDED_HEADERS')
    .option('--stdio', 'serve one connection on stdin/stdout, then exit (for nbd_connect_command)');
}

/** Server options from the flags; TLS files are read and checked here, so a bad one or a contradiction is a usage error at start. */
export function serverOptionsFrom(o: NbdCliOptions): ServerOptions {
  const tls = loadTls({ mode: o.tls, cert: o.tlsCert, key: o.tlsKey, ca: o.tlsCa, psk: o.tlsPsk });
  return {
    tls,
    extendedHeaders: o.extendedHeaders,
    ...(o.maxPayload !== undefined ? { maxPayload: o.maxPayload } : {}),
    ...(o.handshakeTimeout !== undefined ? { handshakeTimeoutMs: Math.round(o.handshakeTimeout * 1000) } : {}),
    ...(o.maxConnections !== undefined ? { maxConnections: Math.floor(o.maxConnections) } : {}),
    ...(o.maxConnectionsPerClient !== undefined ? { maxConnectionsPerClient: Math.floor(o.maxConnectionsPerClient) } : {}),
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
