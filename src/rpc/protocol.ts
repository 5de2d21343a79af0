// JSON-RPC 2.0 envelopes: requests, batches and notifications in; results and error objects
// out. Failed operations answer as SPDK does: code -errno with the strerror text, plus our
// stable AIONBD_* code in data.
import { AionbdError, RpcInvalidParamsError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  RPC_INTERNAL_ERROR,
  RPC_INVALID_PARAMS,
  RPC_INVALID_REQUEST,
  RpcProtocolError,
  type CallContext,
  type RpcDispatcher,
} from './dispatcher.js';
import { errnoName, strerror } from '../util/strerror.js';
import { isObject } from '../util/is_object.js';

export type RpcId = string | number | null;

export interface RpcErrorObject {
  code: number;
  message: string;
  data?: Record<string, unknown>;
}

export type RpcResponse = { jsonrpc: '2.0'; id: RpcId; result: unknown } | { jsonrpc: '2.0'; id: RpcId; error: RpcErrorObject };

/** Error messages quote what the client sent (names, methods): a long one is cut here. */
export const MAX_ERROR_MESSAGE = 1024;

export function errorResponse(id: RpcId, error: RpcErrorObject): RpcResponse {
  // A 16 MiB bdev name must not come back as a 16 MiB error.
  const e = error.message.length <= MAX_ERROR_MESSAGE ? error : { ...error, message: `${error.message.slice(0, MAX_ERROR_MESSAGE)}...` };
  return { jsonrpc: '2.0', id, error: e };
}

/** Turns whatever a method threw into an error object; a bug is logged with its stack. */
export function toRpcError(err: unknown, log: Logger): RpcErrorObject {
  if (err instanceof RpcProtocolError) return { code: err.rpcCode, message: err.message };
  if (err instanceof RpcInvalidParamsError) return { code: RPC_INVALID_PARAMS, message: err.message, data: { code: err.code } };
  if (err instanceof AionbdError) {
    const errno = err.errno ?? 22;
    return {
      code: -Math.abs(errno),
      message: `${strerror(errno)}: ${err.message}`,
      data: { code: err.code, errno: errnoName(errno) ?? errno },
    };
  }
  log.error({ err }, 'JSON-RPC method failed unexpectedly');
  return { code: RPC_INTERNAL_ERROR, message: `Internal error: ${err instanceof Error ? err.message : String(err)}` };
}

/** Answers one message (a request or a batch); null when nothing is to be sent. */
export async function handleMessage(
  msg: unknown,
  d: RpcDispatcher,
  ctx: CallContext,
  log: Logger,
): Promise<RpcResponse | RpcResponse[] | null> {
  if (!Array.isArray(msg)) return handleRequest(msg, d, ctx, log);
  if (msg.length === 0) return errorResponse(null, { code: RPC_INVALID_REQUEST, message: 'Invalid request: empty batch' });
  const out: RpcResponse[] = [];
  // One after the other: a batch that creates a bdev and then exports it must see the bdev.
  for (const m of msg) {
    const r = await handleRequest(m, d, ctx, log);
    if (r !== null) out.push(r);
  }
  return out.length > 0 ? out : null;
}

/** Answers one request of a message; null for a notification that succeeded. */
export async function handleRequest(req: unknown, d: RpcDispatcher, ctx: CallContext, log: Logger): Promise<RpcResponse | null> {
  if (!isObject(req)) return errorResponse(null, { code: RPC_INVALID_REQUEST, message: 'Invalid request: not an object' });
  const id = req['id'];
  if (id !== undefined && id !== null && typeof id !== 'string' && typeof id !== 'number') {
    return errorResponse(null, { code: RPC_INVALID_REQUEST, message: 'Invalid request: id must be a string, a number or null' });
  }
  const rid: RpcId = id ?? null;
  if ('jsonrpc' in req && req['jsonrpc'] !== '2.0')
    return errorResponse(rid, { code: RPC_INVALID_REQUEST, message: 'Invalid request: jsonrpc must be "2.0"' });
  const method = req['method'];
  if (typeof method !== 'string')
    return errorResponse(rid, { code: RPC_INVALID_REQUEST, message: 'Invalid request: method must be a string' });
  const params = req['params'];
  if (params !== undefined && params !== null && typeof params !== 'object') {
    return errorResponse(rid, { code: RPC_INVALID_REQUEST, message: 'Invalid request: params must be an object or an array' });
  }
  try {
    const result = await d.call(method, params, ctx);
    // A notification's result is not sent (its errors are, as SPDK does).
    if (id === undefined || id === null) return null;
    return { jsonrpc: '2.0', id: rid, result: result === undefined ? true : result };
  } catch (err) {
    const e = toRpcError(err, log);
    log.debug({ method, code: e.code, message: e.message }, 'JSON-RPC error');
    return errorResponse(rid, e);
  }
}
