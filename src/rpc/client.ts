// The JSON-RPC client `aionbd rpc` uses: one request over the unix socket, one response.
import net from 'node:net';
import { RpcConnectError, RpcError } from '../errors.js';
import { JsonStream, JsonStreamError } from './json_stream.js';

/** Largest response accepted (SPDK caps its responses at 32 MiB). */
const MAX_RESPONSE_CHARS = 32 * 1024 * 1024;

function isObject(v: unknown): v is Record<string, unknown> { return typeof v === 'object' && v !== null && !Array.isArray(v); }

/** Calls `method`; resolves with its result or rejects with RpcError (the server's message) / RpcConnectError. */
export function rpcCall(socketPath: string, method: string, params: unknown, timeoutMs = 60_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    const stream = new JsonStream(MAX_RESPONSE_CHARS);
    let done = false;
    const finish = (err: Error | null, value?: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err !== null) reject(err); else resolve(value);
    };
    const timer = setTimeout(() => finish(new RpcConnectError(`no answer from ${socketPath} to ${method} within ${timeoutMs / 1000} s`)), timeoutMs);
    sock.once('connect', () => {
      const req: Record<string, unknown> = { jsonrpc: '2.0', method, id: 1 };
      if (params !== undefined) req['params'] = params;
      sock.write(JSON.stringify(req));
    });
    sock.on('data', (chunk: Buffer) => {
      let values: unknown[];
      try {
        values = stream.push(chunk);
      } catch (err) {
        finish(new RpcConnectError(`bad response from ${socketPath}: ${err instanceof JsonStreamError ? err.message : String(err)}`));
        return;
      }
      const r = values[0];
      if (r === undefined) return;
      if (!isObject(r)) { finish(new RpcConnectError(`bad response from ${socketPath}: not an object`)); return; }
      const e = r['error'];
      if (isObject(e)) {
        const code = typeof e['code'] === 'number' ? e['code'] : 0;
        finish(new RpcError(typeof e['message'] === 'string' ? e['message'] : `error ${code}`, code, e['data']));
        return;
      }
      finish(null, r['result']);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' ? 'no such socket' : err.code === 'ECONNREFUSED' ? 'nothing listens there'
        : err.code === 'EACCES' ? 'permission denied' : err.message;
      finish(new RpcConnectError(`cannot reach the JSON-RPC socket ${socketPath}: ${why} (is "aionbd serve" running? give -s PATH)`, { cause: err }));
    });
    sock.once('close', () => finish(new RpcConnectError(`${socketPath} closed the connection without answering ${method}`)));
  });
}
