// rpc.py's command-line forms of every method that has one, by method name: made from the
// method declarations of the core (src/rpc/methods/) and of each bdev module, so a method's
// form lives beside its schema and handler. Parsing is in rpc_args.ts, the help in rpc_help.ts.
import type { Form } from '../method_form.js';
import { MODULES } from '../modules/index.js';
import { CORE_METHODS } from '../rpc/methods/index.js';

export const FORMS: ReadonlyMap<string, Form> = new Map(
  [...CORE_METHODS, ...MODULES.flatMap((m) => m.methods)].flatMap((spec) =>
    spec.form === undefined ? [] : [[spec.name, spec.form] as const],
  ),
);
