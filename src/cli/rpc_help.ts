// What `aionbd rpc METHOD --help` prints, and the one-line usage that usage errors quote: made
// from the forms in rpc_forms.ts, so the help cannot disagree with what is parsed.
import { unitName, type Arg, type Flag } from '../method_form.js';
import { FORMS } from './rpc_forms.js';

const JSON_FORM = "'{JSON params}'";

const metaOf = (a: Arg): string => a.meta ?? a.key.toUpperCase();

function flagUsage(x: Flag): string {
  return `[${x.names[0] ?? ''}${x.kind === 'bool' ? '' : ` ${metaOf(x)}`}]`;
}

/** `METHOD ARG [OPTIONAL] [-f VALUE]...`, or the JSON form for a method without a command-line form. */
export function usage(method: string): string {
  const form = FORMS.get(method);
  if (form === undefined) return `${method} [${JSON_FORM}]`;
  if (form.usage?.[0] !== undefined) return form.usage[0];
  const args = (form.args ?? []).map((a) => (a.optional === true ? `[${metaOf(a)}]` : metaOf(a)));
  return [method, ...args, ...(form.flags ?? []).map(flagUsage)].join(' ');
}

/** The unit rule of a size argument, in words. */
function sizeRule(a: Arg): string {
  return `a bare number is ${unitName(a.unit?.bare ?? 1)}; with a unit (512K, 256M, 1G, 2T) it is what it says`;
}

function describe(a: Arg): string {
  const text = [a.help, a.kind === 'size' ? sizeRule(a) : undefined].filter((x) => x !== undefined).join('; ');
  return `${text}${text === '' ? '' : ' '}(JSON: ${a.json ?? a.key})`;
}

function row(left: string, right: string): string {
  return left.length < 26 ? `  ${left.padEnd(26)}${right}` : `  ${left}\n  ${''.padEnd(26)}${right}`;
}

/** The whole help of one method. */
export function methodHelp(method: string): string {
  const form = FORMS.get(method);
  const lead = 'aionbd rpc [-s SOCK] [-t SEC]';
  const lines = [`usage: ${lead} ${usage(method)}`];
  if (form === undefined) {
    lines.push('', `${method} has no command-line form here: give its params as one JSON object (see the README's method table).`);
    return lines.join('\n');
  }
  for (const u of form.usage?.slice(1) ?? []) lines.push(`       ${lead} ${u}`);
  lines.push(`       ${lead} ${method} ${JSON_FORM}`);
  if ((form.args ?? []).length > 0) {
    lines.push('', 'arguments:');
    for (const a of form.args ?? []) lines.push(row(metaOf(a), describe(a)));
  }
  if ((form.flags ?? []).length > 0) {
    lines.push('', "options (after METHOD; aionbd rpc's own -s SOCK and -t SEC go before it):");
    for (const x of form.flags ?? []) lines.push(row(`${x.names.join(', ')}${x.kind === 'bool' ? '' : ` ${metaOf(x)}`}`, describe(x)));
  }
  if (form.note !== undefined) lines.push('', form.note);
  return lines.join('\n');
}
