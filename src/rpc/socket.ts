// The JSON-RPC server: a unix stream socket (mode 0600), values parsed as they stream in,
// each response one JSON object and a newline, in request order per connection.
import net from 'node:net';
import path from 'node:path';
import { claimSocketPath, listenUnix } from '../util/unix-socket.js';
import type { Logger } from '../log.js';
import { RPC_PARSE_ERROR, type CallContext, type RpcDispatcher } from './dispatcher.js';
import { JsonStream, JsonStreamError } from './json_stream.js';
import { errorResponse, handleMessage } from './protocol.js';

/** Longest request accepted (a load_config of a large setup fits easily). */
export const MAX_REQUEST_CHARS = 16 * 1024 * 1024;
/** As SPDK: more clients at once are refused. */
export const MAX_RPC_CONNECTIONS = 64;

/** How errors name the JSON-RPC socket at absolute path `p`. */
export function rpcAddress(p: string): string { return `unix:${p} (JSON-RPC)`; }

export class RpcSocketServer {
  readonly #server: net.Server;
  readonly #conns = new Set<net.Socket>();
  #path: string | null = null;
  #closing: Promise<void> | null = null;

  constructor(private readonly d: RpcDispatcher, private readonly ctx: CallContext, private readonly log: Logger) {
    // Half-open: a client that shuts its side after the request (socat, nc -N) still gets the
    // answers to what it sent; the socket ends once they are out.
    this.#server = net.createServer({ allowHalfOpen: true }, (s) => this.#onConnection(s));
  }

  get path(): string | null { return this.#path; }

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
      this.log.warn({ connections: this.#conns.size }, 'refusing a JSON-RPC connection');
      sock.destroy();
      return;
    }
    this.#conns.add(sock);
    sock.on('close', () => this.#conns.delete(sock));
    sock.on('error', (err) => this.log.debug({ err: err.message }, 'JSON-RPC connection error'));
    const stream = new JsonStream(MAX_REQUEST_CHARS);
    // Requests of one connection run one after the other, so responses keep their order.
    let chain: Promise<void> = Promise.resolve();
    sock.on('data', (chunk: Buffer) => {
      let values: unknown[];
      let parseError: string | null = null;
      try {
        values = stream.push(chunk);
      } catch (err) {
        if (!(err instanceof JsonStreamError)) throw err;
        values = err.parsed;
        parseError = `Parse error: ${err.message}`;
      }
      for (const v of values) {
        chain = chain.then(async () => {
          const r = await handleMessage(v, this.d, this.ctx, this.log);
          if (r !== null && !sock.destroyed) sock.write(`${JSON.stringify(r)}\n`);
        });
      }
      if (parseError !== null) {
        // As SPDK: a parse error is answered, then the connection is closed (no resync).
        sock.removeAllListeners('data');
        sock.removeAllListeners('end');
        const message = parseError;
        chain = chain.then(() => { sock.end(`${JSON.stringify(errorResponse(null, { code: RPC_PARSE_ERROR, message }))}\n`); });
      }
    });
    sock.on('end', () => { chain = chain.then(() => { sock.end(); }); });
  }

  /** Stops accepting, drops the connections and removes the socket file. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      for (const s of this.#conns) s.destroy();
      if (!this.#server.listening) { resolve(); return; }
      this.#server.close(() => resolve());
    });
    return this.#closing;
  }
}
