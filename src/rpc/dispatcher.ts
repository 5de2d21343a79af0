// The JSON-RPC method table, filled from method declarations (src/method.ts): the core's
// groups (src/rpc/methods/) and each bdev module's. This file knows no method names. Params
// are `unknown` until the method's ajv schema has narrowed them.
import { Ajv } from 'ajv';
import { RpcInvalidParamsError } from '../errors.js';
import type { CallContext, MethodSpec } from '../method.js';
import type { Target } from '../target.js';
import { isObject } from '../util/is_object.js';

export type { CallContext } from '../method.js';

/** What the core's methods run on: the target, and the dispatcher they are in (rpc_get_methods, load_config replay through it). */
export type RpcHost = Target & { readonly rpc: RpcDispatcher };

/** A failure of the JSON-RPC layer itself: unknown method, params that are not an object. */
export class RpcProtocolError extends Error {
  constructor(
    readonly rpcCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'RpcProtocolError';
  }
}

export const RPC_PARSE_ERROR = -32700;
export const RPC_INVALID_REQUEST = -32600;
export const RPC_METHOD_NOT_FOUND = -32601;
export const RPC_INVALID_PARAMS = -32602;
export const RPC_INTERNAL_ERROR = -32603;

type Bound = (params: unknown, call: CallContext) => unknown;

// rpc.py drops arguments that are None; other clients send null for "not given". Either way
// the handler sees the key as absent, so the schema marks optional keys nullable only for this.
function withoutNulls(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) if (v !== null) out[k] = v;
  return out;
}

export class RpcDispatcher {
  readonly #methods = new Map<string, Bound>();
  readonly #ajv = new Ajv({ allErrors: true, strict: true });

  /** Adds every method of `specs`; their handlers get `ctx`. */
  add<C>(specs: readonly MethodSpec<C>[], ctx: C): void {
    for (const spec of specs) {
      const name = spec.name;
      if (this.#methods.has(name)) throw new Error(`JSON-RPC method ${name} registered twice`);
      const run = spec.compile(this.#ajv);
      this.#methods.set(
        name,
        spec.takesParams
          ? (raw, call) => {
              if (raw !== undefined && raw !== null && !isObject(raw))
                throw new RpcProtocolError(RPC_INVALID_PARAMS, 'Invalid parameters: params must be an object');
              return run(withoutNulls(raw ?? {}), ctx, call);
            }
          : (raw, call) => {
              if (raw !== undefined && raw !== null && !(isObject(raw) && Object.keys(raw).length === 0)) {
                throw new RpcInvalidParamsError(`Invalid parameters: ${name} takes no parameters`);
              }
              return run({}, ctx, call);
            },
      );
    }
  }

  /** Every method name, in registration order. */
  names(): string[] {
    return [...this.#methods.keys()];
  }
  has(name: string): boolean {
    return this.#methods.has(name);
  }

  /** Runs a method; rejects with RpcProtocolError, an AionbdError, or (a bug) anything else. */
  async call(name: string, params: unknown, call: CallContext): Promise<unknown> {
    const m = this.#methods.get(name);
    if (m === undefined) throw new RpcProtocolError(RPC_METHOD_NOT_FOUND, 'Method not found');
    return await m(params, call);
  }
}
