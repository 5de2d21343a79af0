// The JSON-RPC client `aionbd rpc` uses: one request over the unix socket, one response.
import net from 'node:net';
import { RpcConnectError, RpcError } from '../errors.js';
import { native } from '../native.js';
import { JsonStream, JsonStreamError } from './json_stream.js';
import { isObject } from '../util/is_object.js';

/** Largest response accepted (SPDK caps its responses at 32 MiB). */
const MAX_RESPONSE_CHARS = 32 * 1024 * 1024;

/**
 * Who serves the socket, when it is neither this user nor root: the path may sit in a directory
 * anyone can write (/var/tmp), so another user could have bound it first to read our requests
 * (file paths) and forge answers (the device `aionbd attach` prints). Judged by the kernel's
 * record of the peer (SO_PEERCRED), not by who owns the path.
 */
function serverNotTrusted(sock: net.Socket): string | null {
  const fd = (sock as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null; // not a unix socket of ours (nothing to judge)
  const { uid, pid } = native().peerCred(fd);
  const me = process.geteuid?.() ?? uid;
  return uid === me || uid === 0 ? null : `uid ${uid} (pid ${pid})`;
}

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
      if (err !== null) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(
      () => finish(new RpcConnectError(`no answer from ${socketPath} to ${method} within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    sock.once('connect', () => {
      const stranger = serverNotTrusted(sock);
      if (stranger !== null) {
        finish(new RpcConnectError(`${socketPath} is served by ${stranger}, neither you nor root: not sending it ${method}`));
        return;
      }
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
      if (!isObject(r)) {
        finish(new RpcConnectError(`bad response from ${socketPath}: not an object`));
        return;
      }
      const e = r['error'];
      if (isObject(e)) {
        const code = typeof e['code'] === 'number' ? e['code'] : 0;
        finish(new RpcError(typeof e['message'] === 'string' ? e['message'] : `error ${code}`, code, e['data']));
        return;
      }
      finish(null, r['result']);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'ENOENT'
          ? 'no such socket'
          : err.code === 'ECONNREFUSED'
            ? 'nothing listens there'
            : err.code === 'EACCES'
              ? 'permission denied'
              : err.message;
      finish(
        new RpcConnectError(`cannot reach the JSON-RPC socket ${socketPath}: ${why} (is "aionbd serve" running? give -s PATH)`, {
          cause: err,
        }),
      );
    });
    sock.once('close', () => finish(new RpcConnectError(`${socketPath} closed the connection without answering ${method}`)));
  });
}
