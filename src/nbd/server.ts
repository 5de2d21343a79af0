// Listeners, exports and connections. One server serves any number of exports on any number of
// TCP and unix listeners; each connection negotiates, then runs a Transmission.
import fs from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Bdev } from '../bdev/bdev.js';
import { bufferPool, type BufferPool } from '../bdev/buffers.js';
import { ExportExistsError, ListenError, ServerClosedError, UsageError } from '../errors.js';
import { logger, type Logger } from '../log.js';
import { formatAddress, parseListenAddress, type ListenAddress } from './address.js';
import { Admission, clientKey, DEFAULT_MAX_CONNECTIONS_PER_CLIENT } from './admission.js';
import { openFileLimits, type ServerLimits } from './limits.js';
import { CONNECTION_HEAP_BYTES, noteGarbage } from '../util/heap_settle.js';
import { claimSocketPath, listenUnix } from '../util/unix-socket.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_MAX_PAYLOAD } from './constants.js';
import { Export, type ExportOptions } from './export.js';
import { HandshakeAborted, HandshakeViolation, negotiate, type HandshakeHost, type TlsSettings } from './handshake.js';
import { EndOfStream } from './byte_reader.js';
import { Transmission } from './transmission.js';
import { DEFAULT_MEMORY_BUDGET, MemoryBudget } from './budget.js';
import { ReplyStyle } from './replies.js';

export interface ServerOptions {
  /** Largest READ/WRITE payload (bytes). Default 64 MiB (DEFAULT_MAX_PAYLOAD). */
  maxPayload?: number;
  /**
   * Bytes of request buffers, bounce buffers and queued replies in flight, server-wide, shared
   * fairly by the connections (kernel-attached ones included). Default 256 MiB.
   */
  memoryBudget?: number;
  /** A client that has not finished the handshake by then is dropped. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Requests in flight per connection. Default 128 (the kernel's tags per connection). */
  requestsPerConnection?: number;
  /**
   * Connections at once; more are refused. Default: half of the open-file limit left after 256
   * fds kept for other uses, (RLIMIT_NOFILE - 256) / 2 (see maxConnectionsFor).
   */
  maxConnections?: number;
  /**
   * Connections at once from one TCP client address; more from it are refused. Default 256.
   * Unix-socket clients (mode 0600: the server's own user) count only toward maxConnections.
   */
  maxConnectionsPerClient?: number;
  /**
   * A connection in transmission with no request in flight and nothing received for this long
   * is closed (as a server shutdown closes it). Default 0: never. Off by default because the
   * kernel's NBD client keeps its connections open, idle, for as long as a device is attached,
   * and loses the device when one is closed. Connections served with serveDirect() (kernel
   * attach over a socketpair) are never closed for idleness.
   */
  idleTimeoutMs?: number;
  /** STARTTLS: off (default), on (offered), or require (nothing else until TLS is on). */
  tls?: TlsSettings | null;
  /** Offer NBD_OPT_EXTENDED_HEADERS (default true). */
  extendedHeaders?: boolean;
  /**
   * Raise the process's RLIMIT_NOFILE soft limit to its hard limit first (default false: an
   * embedding program's process limits are its own to set; `aionbd serve` asks for it). Node
   * usually raises it at start-up already; this covers the processes where it did not.
   */
  raiseFileLimit?: boolean;
  log?: Logger;
}

type State = 'open' | 'closing' | 'closed';

interface Conn {
  sock: Duplex;
  /** The client address it is counted under (TCP), or null. */
  peer: string | null;
  t: Transmission | null;
  /** The export it negotiated (hot-remove finds connections by bdev). */
  x: Export | null;
}

export class NbdServer implements HandshakeHost {
  readonly maxPayload: number;
  readonly tls: TlsSettings | null;
  readonly extendedHeaders: boolean;
  /** The limits in effect, for the start-up log and diagnostics. */
  readonly limits: ServerLimits;
  readonly #handshakeTimeoutMs: number;
  readonly #depth: number;
  readonly #admission: Admission;
  readonly #idleTimeoutMs: number;
  readonly #log: Logger;
  readonly #pool: BufferPool = bufferPool();
  readonly #budget: MemoryBudget;
  readonly #exports = new Map<string, Export>();
  readonly #listeners: { server: net.Server; address: ListenAddress }[] = [];
  readonly #conns = new Set<Conn>();
  readonly #fdListeners: net.Server[] = [];
  #state: State = 'open';
  #closing: Promise<void> | null = null;
  #nextConn = 1;
  /** Bdevs whose removal this server listens for (hot-remove). */
  readonly #watched = new WeakSet<Bdev>();

  constructor(opts: ServerOptions = {}) {
    this.maxPayload = opts.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    if (
      !Number.isInteger(this.maxPayload) ||
      this.maxPayload < 4096 ||
      this.maxPayload > 2 ** 31 ||
      (this.maxPayload & (this.maxPayload - 1)) !== 0
    ) {
      throw new UsageError(`max payload ${this.maxPayload} must be a power of two from 4096 to 2 GiB`);
    }
    this.#budget = new MemoryBudget(opts.memoryBudget ?? DEFAULT_MEMORY_BUDGET);
    this.tls = opts.tls ?? null;
    this.extendedHeaders = opts.extendedHeaders ?? true;
    this.#handshakeTimeoutMs = opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.#depth = opts.requestsPerConnection ?? 128;
    this.#log = opts.log ?? logger();
    const files = openFileLimits(opts.raiseFileLimit === true, opts.maxConnections);
    this.#admission = new Admission(files.maxConnections, opts.maxConnectionsPerClient ?? DEFAULT_MAX_CONNECTIONS_PER_CLIENT, this.#log);
    this.limits = {
      ...files,
      maxConnectionsPerClient: this.#admission.maxPerClient,
      memoryBudget: this.#budget.total,
      requestsPerConnection: this.#depth,
    };
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? 0;
    if (!Number.isFinite(this.#idleTimeoutMs) || this.#idleTimeoutMs < 0 || this.#idleTimeoutMs > 2 ** 31 - 1) {
      throw new UsageError(`idle timeout ${this.#idleTimeoutMs} ms must be 0 (off) or a positive number of milliseconds`);
    }
  }

  // HandshakeHost
  lookup(name: string): Export | undefined {
    if (name === '') return this.#exports.values().next().value; // the default export: the first one added
    return this.#exports.get(name);
  }
  exports(): Iterable<Export> {
    return this.#exports.values();
  }
  closing(): boolean {
    return this.#state !== 'open';
  }

  /** Exports a bdev under opts.name (default: the bdev's name). */
  addExport(bdev: Bdev, opts: ExportOptions = {}): Export {
    const x = new Export(bdev, opts);
    if (this.#exports.has(x.name)) throw new ExportExistsError(x.name);
    this.#exports.set(x.name, x);
    if (!this.#watched.has(bdev)) {
      this.#watched.add(bdev);
      bdev.onRemove(() => this.removeExportsOf(bdev));
    }
    return x;
  }

  /**
   * Hot-remove (the bdev is being deleted): drops every export of `bdev` and shuts down the
   * connections serving them. Requests in flight are answered; the closing bdev fails any new
   * one with ESHUTDOWN. Returns the names of the exports removed.
   */
  removeExportsOf(bdev: Bdev): string[] {
    const removed: string[] = [];
    for (const [name, x] of this.#exports) {
      if (x.bdev === bdev) {
        this.#exports.delete(name);
        removed.push(name);
      }
    }
    for (const c of this.#conns) if (c.x !== null && c.x.bdev === bdev) c.t?.shutdown();
    return removed;
  }

  removeExport(name: string): boolean {
    return this.#exports.delete(name);
  }

  /** The largest size the connected clients of `bdev` were told (0: none connected), kernel devices included. */
  sizeToldFor(bdev: Bdev): number {
    let told = 0;
    for (const c of this.#conns) if (c.x !== null && c.x.bdev === bdev) told = Math.max(told, c.x.size);
    return told;
  }
  getExport(name: string): Export | undefined {
    return this.#exports.get(name);
  }
  get connections(): number {
    return this.#conns.size;
  }
  /** The server-wide memory budget (bytes in flight against its total), for metrics. */
  get budget(): MemoryBudget {
    return this.#budget;
  }
  get addresses(): ListenAddress[] {
    return this.#listeners.map((l) => l.address);
  }

  /** Listens on an inherited listening socket (systemd socket activation: LISTEN_FDS). */
  async listenFd(fd: number): Promise<void> {
    if (this.#state !== 'open') throw new ServerClosedError();
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => {
      void this.#accept(sock, sock.remoteFamily !== undefined, true);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(`inherited fd ${fd}`, err)));
      server.listen({ fd }, () => resolve());
    });
    server.on('error', (err) => this.#log.error({ err }, 'listener error'));
    this.#fdListeners.push(server);
    this.#log.info({ fd }, 'listening on an inherited socket');
  }

  /** Starts listening; resolves with the bound address (a TCP port 0 becomes the real port). */
  async listen(addr: ListenAddress | string): Promise<ListenAddress> {
    if (this.#state !== 'open') throw new ServerClosedError();
    const a = typeof addr === 'string' ? parseListenAddress(addr) : addr;
    if (a.kind === 'unix') await claimSocketPath(formatAddress(a), a.path);
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => {
      void this.#accept(sock, a.kind === 'tcp', true);
    });
    if (a.kind === 'unix') {
      await listenUnix(server, formatAddress(a), a.path);
    } else {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(formatAddress(a), err)));
        server.listen({ host: a.host, port: a.port }, () => resolve());
      });
    }
    server.on('error', (err) => this.#log.error({ err }, 'listener error'));
    const bound: ListenAddress = a.kind === 'tcp' ? { ...a, port: (server.address() as net.AddressInfo).port } : a;
    this.#listeners.push({ server, address: bound });
    this.#log.info({ address: formatAddress(bound) }, 'listening');
    return bound;
  }

  /**
   * Serves one already-connected stream (a socket from a listener, stdin/stdout for --stdio,
   * or one end of a socketpair): handshake, then transmission. Resolves when the connection
   * is over and every buffer it used is back.
   */
  accept(sock: Duplex, tcp = false): Promise<void> {
    return this.#accept(sock, tcp, false);
  }

  /** `owned`: the socket came from one of our listeners, so nobody else may destroy it. */
  #accept(sock: Duplex, tcp: boolean, owned: boolean): Promise<void> {
    const peer = tcp ? clientKey(sock) : null;
    const refusal = this.#admission.admit(peer, this.#conns.size, this.#state !== 'open');
    if (refusal !== null) {
      this.#admission.refused(peer, refusal);
      sock.destroy();
      return Promise.resolve();
    }
    const log = this.#log.child({ conn: this.#nextConn++ });
    const conn: Conn = { sock, peer, t: null, x: null };
    this.#conns.add(conn);
    sock.on('error', (err: NodeJS.ErrnoException) => log.debug({ code: err.code }, 'socket error'));
    if (tcp && sock instanceof net.Socket) sock.setNoDelay(true);
    const timer = setTimeout(() => {
      log.info('handshake not finished in time; dropping the client');
      sock.destroy();
    }, this.#handshakeTimeoutMs);
    timer.unref();
    sock.resume();
    return negotiate(sock, this, log).then(
      ({ export: x, socket, style, metaContexts, leftover }) => {
        clearTimeout(timer);
        if (socket.destroyed) {
          this.#drop(conn);
          return undefined;
        }
        log.debug({ export: x.name, style, metaContexts }, 'transmission');
        conn.sock = socket;
        const t = new Transmission(
          socket,
          x,
          {
            maxPayload: this.maxPayload,
            depth: this.#depth,
            pool: this.#pool,
            budget: this.#budget,
            log,
            style,
            metaContexts,
            closing: () => this.closing(),
            ownsSocket: owned,
          },
          leftover,
        );
        conn.t = t;
        conn.x = x;
        if (this.#state !== 'open' || x.bdev.closed) t.shutdown();
        else if (this.#idleTimeoutMs > 0) this.#closeWhenIdle(t, log);
        return t.done.then(() => {
          this.#drop(conn);
        });
      },
      (err: unknown) => {
        clearTimeout(timer);
        this.#drop(conn);
        if (err instanceof HandshakeAborted) {
          // The ACK goes out, then the socket closes: it is paused, so waiting for the
          // client's FIN (half-open) would keep it forever.
          log.debug('client aborted the handshake');
          sock.end(() => sock.destroy());
          return undefined;
        }
        if (err instanceof HandshakeViolation) log.info({ reason: err.message }, 'handshake failed; closing');
        else if (!(err instanceof EndOfStream)) log.debug({ err }, 'handshake ended');
        sock.destroy();
        return undefined;
      },
    );
  }

  /**
   * Serves `sock` directly in transmission phase, with no handshake: the kernel's end of a
   * socketpair handed over by netlink or ioctl attach, which learns size and flags from the
   * attach call instead. Compact requests, simple replies. Resolves when the stream is done.
   * `exportName` may be an Export not listed here (a bdev attached to the kernel only).
   */
  serveDirect(sock: Duplex, exportName: string | Export): Promise<void> {
    const x = typeof exportName === 'string' ? this.#exports.get(exportName) : exportName;
    if (x === undefined) throw new UsageError(`no export named "${String(exportName)}"`);
    if (this.#state !== 'open') throw new ServerClosedError();
    const log = this.#log.child({ conn: this.#nextConn++, direct: true });
    sock.on('error', (err: NodeJS.ErrnoException) => log.debug({ code: err.code }, 'socket error'));
    const t = new Transmission(
      sock,
      x,
      {
        maxPayload: this.maxPayload,
        depth: this.#depth,
        pool: this.#pool,
        budget: this.#budget,
        log,
        style: ReplyStyle.Simple,
        metaContexts: [],
        closing: () => this.closing(),
      },
      null,
    );
    const conn: Conn = { sock, peer: null, t, x };
    this.#conns.add(conn);
    return t.done.then(() => {
      this.#drop(conn);
    });
  }

  #drop(conn: Conn): void {
    if (!this.#conns.delete(conn)) return;
    this.#admission.release(conn.peer);
    noteGarbage(CONNECTION_HEAP_BYTES);
  }

  // One timer per connection, re-armed for the time left: a request in flight or bytes received
  // start the count again.
  #closeWhenIdle(t: Transmission, log: Logger): void {
    const limit = this.#idleTimeoutMs;
    let timer: NodeJS.Timeout | null = null;
    const check = (): void => {
      const left = limit - t.idleFor(performance.now());
      if (left > 0) {
        timer = setTimeout(check, left);
        timer.unref();
        return;
      }
      timer = null;
      log.info({ idleSeconds: limit / 1000 }, 'connection idle for the idle timeout; closing it');
      t.shutdown();
    };
    timer = setTimeout(check, limit);
    timer.unref();
    void t.done.then(() => {
      if (timer !== null) clearTimeout(timer);
    });
  }

  /**
   * Stops accepting, answers requests in flight (new ones get ESHUTDOWN), then closes every
   * connection. Bdevs stay open: they belong to whoever created them.
   */
  close(opts: { graceMs?: number } = {}): Promise<void> {
    this.#closing ??= this.#close(opts.graceMs ?? 5_000);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    this.#state = 'closing';
    // net.Server.close() stops accepting at once but calls back only when every connection is
    // gone, so the connections are shut down before that callback is awaited.
    const listenersClosed = Promise.all([
      ...this.#listeners.map(
        ({ server, address }) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            if (address.kind === 'unix') fs.rmSync(address.path, { force: true });
          }),
      ),
      ...this.#fdListeners.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
          }),
      ),
    ]);
    const done: Promise<void>[] = [];
    for (const c of this.#conns) {
      if (c.t === null) {
        c.sock.destroy();
        continue;
      }
      c.t.shutdown();
      done.push(c.t.done);
    }
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([Promise.all(done), grace]);
    clearTimeout(timer);
    // Clients that did not go away in time are dropped; their I/O still completes first.
    for (const c of this.#conns) {
      if (c.t !== null) c.t.destroy();
      else c.sock.destroy();
    }
    await Promise.all(done);
    await listenersClosed;
    this.#conns.clear();
    this.#state = 'closed';
    this.#log.debug('server closed');
  }
}
