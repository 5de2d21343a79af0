// Who may open one more NBD connection: a server-wide bound, and a bound per client address so
// that one host cannot take every slot. Refusals are logged with their reason, at a bounded rate
// (a client hammering a full server must not flood the log in turn).
import net from 'node:net';
import { UsageError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * File descriptors kept out of the default connection limit: listeners, the RPC socket and its
 * clients, the event loop's own (epoll, eventfds, signal pipes), log files.
 */
export const RESERVED_FDS = 256;
/** The largest default connection limit (and the most --max-connections takes). */
export const MAX_CONNECTIONS_CAP = 1_000_000;
/**
 * Connections at once from one TCP client address. A kernel with many multi-connection devices
 * (say 16 devices of `nbd-client -C 8`, or 32 of 4: 128 connections) fits twice over, while one
 * address can hold at most a quarter of the default server-wide bound.
 */
export const DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 256;
/** At most one refusal line per this interval; the others are counted into the next one. */
const REFUSAL_LOG_INTERVAL_MS = 1000;

/**
 * The default server-wide connection limit for an open-file limit (RLIMIT_NOFILE's soft limit,
 * -1 for none): half of what is left after RESERVED_FDS. A connection holds one fd (two for a
 * moment while it is taken over from Node's socket, and two for good when an embedding program
 * hands in a socket it keeps); the other half stays free for bdevs, each of which keeps its file
 * open. So connections run out before fds do, and a refusal says which limit was hit.
 */
export function maxConnectionsFor(openFiles: number): number {
  if (openFiles < 0) return MAX_CONNECTIONS_CAP;
  return Math.min(MAX_CONNECTIONS_CAP, Math.max(1, Math.floor((openFiles - RESERVED_FDS) / 2)));
}

export function checkLimit(what: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${what} ${n} must be a whole number of at least 1`);
  return n;
}

/**
 * The key a TCP peer is counted under: its address, with IPv4-mapped IPv6 folded into IPv4
 * (a dual-stack listener sees ::ffff:a.b.c.d). Unix-socket and other streams are not counted
 * per client: the socket is mode 0600, so every peer is the server's own user (or root).
 */
export function clientKey(sock: unknown): string | null {
  if (!(sock instanceof net.Socket)) return null;
  const a = sock.remoteAddress;
  if (a === undefined) return null;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  return m !== null ? (m[1] as string) : a.toLowerCase();
}

export class Admission {
  readonly #perClient = new Map<string, number>();
  #lastLog = 0;
  #suppressed = 0;

  constructor(
    readonly maxConnections: number,
    readonly maxPerClient: number,
    private readonly log: Logger,
  ) {
    checkLimit('max connections', maxConnections);
    checkLimit('max connections per client', maxPerClient);
  }

  /** Null when admitted (and counted: call release() with the same key later), else why not. */
  admit(key: string | null, open: number, closing: boolean): string | null {
    if (closing) return 'the server is shutting down';
    if (open >= this.maxConnections)
      return `${open} connections are open, the server-wide limit (--max-connections ${this.maxConnections})`;
    if (key === null) return null;
    const n = this.#perClient.get(key) ?? 0;
    if (n >= this.maxPerClient) {
      return `${key} has ${n} connections open, the per-client limit (--max-connections-per-client ${this.maxPerClient})`;
    }
    this.#perClient.set(key, n + 1);
    return null;
  }

  release(key: string | null): void {
    if (key === null) return;
    const n = (this.#perClient.get(key) ?? 1) - 1;
    if (n <= 0) this.#perClient.delete(key);
    else this.#perClient.set(key, n);
  }

  refused(key: string | null, reason: string): void {
    const now = Date.now();
    if (now - this.#lastLog < REFUSAL_LOG_INTERVAL_MS) {
      this.#suppressed++;
      return;
    }
    this.#lastLog = now;
    const more = this.#suppressed;
    this.#suppressed = 0;
    this.log.warn({ client: key ?? undefined, reason, ...(more > 0 ? { alsoRefused: more } : {}) }, `refusing a connection: ${reason}`);
  }
}
