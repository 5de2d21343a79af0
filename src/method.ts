// A JSON-RPC method as data: its name, the ajv schema of its params, its handler and its rpc.py
// command-line form. The core's method groups (src/rpc/methods/) and every bdev module declare
// their methods this way; the dispatcher's table, `aionbd rpc`'s forms and its help are all made
// from these declarations, so none of them keeps a list of method names.
import type { Ajv, JSONSchemaType } from 'ajv';
import { RpcInvalidParamsError } from './errors.js';
import type { Form } from './method_form.js';

/** Where files named by a caller may be opened (the JSON-RPC socket's --allow-path roots). */
export interface PathPolicy {
  /** The real path of `p` and the root it lies under; throws when it lies under none. */
  check(p: string): { filename: string; root: string };
}

/** What a call may do beyond its params: paths over RPC are checked, in-process ones are not. */
export interface CallContext {
  /** null: the caller is trusted (embedded API, --config on the command line). */
  allowed: PathPolicy | null;
}

/** A method's handler behind its schema: params (an object, nulls dropped) in, its answer out. */
export type Run<C> = (params: Record<string, unknown>, ctx: C, call: CallContext) => unknown;

/** One method, for handlers that get a `C` (a bdev module's context, or the core's). */
export interface MethodSpec<C> {
  readonly name: string;
  /** false: the method takes no params at all (SPDK refuses any). */
  readonly takesParams: boolean;
  /** rpc.py's positional arguments and flags for `aionbd rpc NAME ...`; absent: JSON params only. */
  readonly form: Form | undefined;
  /** The handler behind its schema's check, compiled once with the dispatcher's ajv. */
  compile(ajv: Ajv): Run<C>;
}

export interface MethodMaker<C> {
  /** A method whose params (an object; absent means {}) must match `schema`. */
  method<P>(
    name: string,
    schema: JSONSchemaType<P>,
    handler: (params: P, ctx: C, call: CallContext) => unknown,
    form?: Form,
  ): MethodSpec<C>;
  /** A method that takes no params at all. */
  method0(name: string, handler: (ctx: C, call: CallContext) => unknown, form?: Form): MethodSpec<C>;
}

/** The makers of methods whose handlers get a `C`. */
export function methodsFor<C>(): MethodMaker<C> {
  return {
    method: (name, schema, handler, form) => ({
      name,
      takesParams: true,
      form,
      compile: (ajv) => {
        const validate = ajv.compile(schema);
        return (params, ctx, call) => {
          if (!validate(params))
            throw new RpcInvalidParamsError(`Invalid parameters: ${ajv.errorsText(validate.errors, { dataVar: 'params' })}`);
          return handler(params, ctx, call);
        };
      },
    }),
    method0: (name, handler, form) => ({ name, takesParams: false, form, compile: () => (_params, ctx, call) => handler(ctx, call) }),
  };
}

/** Params that name one thing: SPDK's { "name": ... } of every delete method and more. */
export const byName: JSONSchemaType<{ name: string }> = {
  type: 'object',
  properties: { name: { type: 'string' } },
  required: ['name'],
  additionalProperties: false,
};
