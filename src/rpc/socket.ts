// The JSON-RPC server: a unix stream socket (mode 0600). Each connection (connection.ts) gets
// its responses as one JSON object and a newline each, in request order.
import net from 'node:net';
import path from 'node:path';
import { claimSocketPath, listenUnix } from '../util/unix-socket.js';
import type { Logger } from '../log.js';
import { RpcConnection } from './connection.js';
import type { CallContext, RpcDispatcher } from './dispatcher.js';

/** As SPDK: more clients at once are refused. */
export const MAX_RPC_CONNECTIONS = 64;

/** How errors name the JSON-RPC socket at absolute path `p`. */
export function rpcAddress(p: string): string {
  return `unix:${p} (JSON-RPC)`;
}

export class RpcSocketServer {
  readonly #server: net.Server;
  readonly #conns = new Set<net.Socket>();
  #path: string | null = null;
  #closing: Promise<void> | null = null;

  constructor(
    private readonly d: RpcDispatcher,
    private readonly ctx: CallContext,
    private readonly log: Logger,
  ) {
    // Half-open: a client that shuts its side after the request (socat, nc -N) still gets the
    // answers to what it sent; the socket ends once they are out.
    this.#server = net.createServer({ allowHalfOpen: true }, (s) => this.#onConnection(s));
  }

  get path(): string | null {
    return this.#path;
  }

  async listen(socketPath: string): Promise<void> {
    const p = path.resolve(socketPath);
    const address = rpcAddress(p);
    await claimSocketPath(address, p);
    await listenUnix(this.#server, address, p);
    this.#server.on('error', (err) => this.log.error({ err }, 'JSON-RPC listener error'));
    this.#path = p;
    this.log.info({ socket: p }, 'JSON-RPC listening');
  }

  #onConnection(sock: net.Socket): void {
    if (this.#closing !== null || this.#conns.size >= MAX_RPC_CONNECTIONS) {
      const why = this.#closing !== null ? 'the server is shutting down' : `${this.#conns.size} clients are connected, the limit`;
      this.log.warn({ connections: this.#conns.size }, `refusing a JSON-RPC connection: ${why}`);
      sock.destroy();
      return;
    }
    this.#conns.add(sock);
    sock.on('close', () => this.#conns.delete(sock));
    sock.on('error', (err) => this.log.debug({ err: err.message }, 'JSON-RPC connection error'));
    new RpcConnection(sock, this.d, this.ctx, this.log);
  }

  /** Stops accepting, drops the connections and removes the socket file. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      for (const s of this.#conns) s.destroy();
      if (!this.#server.listening) {
        resolve();
        return;
      }
      this.#server.close(() => resolve());
    });
    return this.#closing;
  }
}
