// rpc.py's command-line forms (rpc_forms.ts) turned into the JSON params SPDK's client would
// send. Any method also takes raw JSON params.
import { UsageError } from '../errors.js';
import { parseSize } from '../util/size.js';
import { unitName, type Arg, type SizeUnit } from '../method_form.js';
import { FORMS } from './rpc_forms.js';
import { usage } from './rpc_help.js';

const BARE = /^\d+$/;

function convertSize(v: string, unit: SizeUnit, what: string): number {
  const bad = `${what} must be a whole number of ${unitName(unit.bare)} or a size with a unit (512K, 256M, 1G), not "${v}"`;
  let bytes: number;
  if (BARE.test(v.trim())) bytes = Number(v) * unit.bare;
  else {
    try {
      bytes = parseSize(v, what);
    } catch {
      throw new UsageError(bad);
    }
  }
  if (!Number.isSafeInteger(bytes)) throw new UsageError(bad);
  if (bytes % unit.sent === 0) return bytes / unit.sent;
  if (unit.roundUp === true) return Math.ceil(bytes / unit.sent);
  throw new UsageError(`${what} ${v} is not a whole number of ${unitName(unit.sent)}`);
}

function convert(a: Arg, v: string, what: string): unknown {
  switch (a.kind) {
    case 'int': {
      const x = Number(v);
      if (v.trim() === '' || !Number.isSafeInteger(x)) throw new UsageError(`${what} must be a whole number, not "${v}"`);
      return x;
    }
    case 'size':
      return convertSize(v, a.unit ?? { bare: 1, sent: 1 }, what);
    case 'list':
      return v.split(/\s+/).filter((x) => x !== '');
    case 'csv':
      return v.split(',').filter((x) => x !== '');
    case 'kv': {
      const eq = v.indexOf('=');
      if (eq <= 0) throw new UsageError(`${what} takes KEY=VALUE, not "${v}"`);
      return { [v.slice(0, eq)]: v.slice(eq + 1) };
    }
    default:
      return v;
  }
}

const isFlagWord = (w: string): boolean => w.startsWith('-') && !/^-\d/.test(w);

/** The params for `method` from its command-line words; raw JSON (one word starting with "{") for any method. */
export function paramsFromArgs(method: string, words: string[]): Record<string, unknown> | undefined {
  if (words.length === 1 && (words[0] ?? '').trimStart().startsWith('{')) {
    let v: unknown;
    try {
      v = JSON.parse(words[0] ?? '');
    } catch (err) {
      throw new UsageError(`the params are not valid JSON: ${(err as Error).message}`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError('the params must be a JSON object');
    return v as Record<string, unknown>;
  }
  const form = FORMS.get(method);
  if (form === undefined) {
    if (words.length > 0) throw new UsageError(`${method}: give its params as one JSON object, e.g. '{"name": "x"}'`);
    return undefined;
  }
  const out: Record<string, unknown> = {};
  // Which word set each param, so that one given twice (NAME and -n NAME) is refused.
  const givenBy = new Map<string, string>();
  const set = (key: string, value: unknown, by: string): void => {
    const before = givenBy.get(key);
    if (before !== undefined && before !== by) throw new UsageError(`${method}: ${by} and ${before} both give ${key} (${usage(method)})`);
    givenBy.set(key, by);
    out[key] = value;
  };
  const positional: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i] ?? '';
    const eq = w.startsWith('--') ? w.indexOf('=') : -1;
    const name = eq > 0 ? w.slice(0, eq) : w;
    const flag = isFlagWord(w) ? form.flags?.find((x) => x.names.includes(name)) : undefined;
    if (flag === undefined) {
      if (isFlagWord(w)) throw new UsageError(`${method}: unknown option ${w}`);
      positional.push(w);
      continue;
    }
    const by = flag.names[0] ?? name;
    if (flag.kind === 'bool') {
      set(flag.key, true, by);
      continue;
    }
    const v = eq > 0 ? w.slice(eq + 1) : words[++i];
    if (v === undefined) throw new UsageError(`${method}: ${name} needs a value`);
    const value = convert(flag, v, name);
    // KEY=VALUE options add up: --config-param a=1 --config-param b=2.
    set(
      flag.key,
      flag.kind === 'kv' ? { ...(out[flag.key] as Record<string, string> | undefined), ...(value as Record<string, string>) } : value,
      by,
    );
  }
  const args = form.args ?? [];
  if (positional.length > args.length) throw new UsageError(`${method}: too many arguments (${usage(method)})`);
  args.forEach((a, i) => {
    const v = positional[i];
    const meta = a.meta ?? a.key.toUpperCase();
    if (v === undefined) {
      if (a.optional !== true) throw new UsageError(`${method}: missing ${meta} (${usage(method)})`);
      return;
    }
    set(a.key, convert(a, v, meta), meta);
  });
  for (const [key, how] of Object.entries(form.needs ?? {})) {
    if (!(key in out)) throw new UsageError(`${method}: missing ${key}: give ${how} (${usage(method)})`);
  }
  return form.build !== undefined ? form.build(out) : out;
}
