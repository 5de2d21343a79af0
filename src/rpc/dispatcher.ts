// The JSON-RPC method table. Method groups (src/rpc/methods/*) register through the Registrar
// interface; this file knows no method names. Params are `unknown` until the method's ajv
// schema has narrowed them.
import { Ajv, type JSONSchemaType, type ValidateFunction } from 'ajv';
import { RpcInvalidParamsError } from '../errors.js';
import type { AllowedPaths } from './allow_path.js';
import { isObject } from '../util/is_object.js';

/** What a call may do beyond its params: paths over RPC are checked, in-process ones are not. */
export interface CallContext {
  /** null: the caller is trusted (embedded API, --config on the command line). */
  allowed: AllowedPaths | null;
}

export type Handler<P> = (params: P, ctx: CallContext) => unknown;

export interface Registrar {
  /** A method whose params (an object; absent means {}) must match `schema`. */
  method<P>(name: string, schema: JSONSchemaType<P>, handler: Handler<P>): void;
  /** A method that takes no params at all (SPDK refuses any). */
  method0(name: string, handler: (ctx: CallContext) => unknown): void;
  /** Every method name, in registration order. */
  names(): string[];
}

/** A failure of the JSON-RPC layer itself: unknown method, params that are not an object. */
export class RpcProtocolError extends Error {
  constructor(readonly rpcCode: number, message: string) { super(message); this.name = 'RpcProtocolError'; }
}

export const RPC_PARSE_ERROR = -32700;
export const RPC_INVALID_REQUEST = -32600;
export const RPC_METHOD_NOT_FOUND = -32601;
export const RPC_INVALID_PARAMS = -32602;
export const RPC_INTERNAL_ERROR = -32603;

type Bound = (params: unknown, ctx: CallContext) => unknown;

// rpc.py drops arguments that are None; other clients send null for "not given". Either way
// the handler sees the key as absent, so the schema marks optional keys nullable only for this.
function withoutNulls(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) if (v !== null) out[k] = v;
  return out;
}

export class RpcDispatcher implements Registrar {
  readonly #methods = new Map<string, Bound>();
  readonly #ajv = new Ajv({ allErrors: true, strict: true });

  method<P>(name: string, schema: JSONSchemaType<P>, handler: Handler<P>): void {
    const validate: ValidateFunction<P> = this.#ajv.compile(schema);
    this.#add(name, (raw, ctx) => {
      if (raw !== undefined && raw !== null && !isObject(raw)) throw new RpcProtocolError(RPC_INVALID_PARAMS, 'Invalid parameters: params must be an object');
      const params = withoutNulls(raw ?? {});
      if (!validate(params)) {
        throw new RpcInvalidParamsError(`Invalid parameters: ${this.#ajv.errorsText(validate.errors, { dataVar: 'params' })}`);
      }
      return handler(params, ctx);
    });
  }

  method0(name: string, handler: (ctx: CallContext) => unknown): void {
    this.#add(name, (raw, ctx) => {
      if (raw !== undefined && raw !== null && !(isObject(raw) && Object.keys(raw).length === 0)) {
        throw new RpcInvalidParamsError(`Invalid parameters: ${name} takes no parameters`);
      }
      return handler(ctx);
    });
  }

  #add(name: string, fn: Bound): void {
    if (this.#methods.has(name)) throw new Error(`JSON-RPC method ${name} registered twice`);
    this.#methods.set(name, fn);
  }

  names(): string[] { return [...this.#methods.keys()]; }
  has(name: string): boolean { return this.#methods.has(name); }

  /** Runs a method; rejects with RpcProtocolError, an AionbdError, or (a bug) anything else. */
  async call(name: string, params: unknown, ctx: CallContext): Promise<unknown> {
    const m = this.#methods.get(name);
    if (m === undefined) throw new RpcProtocolError(RPC_METHOD_NOT_FOUND, 'Method not found');
    return await m(params, ctx);
  }
}
