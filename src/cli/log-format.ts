// How log records look on stderr: pino's JSON lines for machines (the default when stderr is not
// a terminal), or one readable line per record for people (the default on a terminal):
//   [14:02:11.385] INFO: listening address=unix:/run/a.sock
import { Option } from 'commander';

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function logFormatOption(): Option {
  return new Option(
    '--log-format <format>',
    'log records as JSON lines, or pretty: one readable line each (default: pretty when stderr is a terminal, else json)',
  ).choices(LOG_FORMATS);
}

/** The format asked for, else pretty for a terminal and JSON for anything else (a file, a pipe, journald). */
export function resolveLogFormat(asked: LogFormat | undefined, stderr: { isTTY?: boolean } = process.stderr): LogFormat {
  return asked ?? (stderr.isTTY === true ? 'pretty' : 'json');
}

/** Turns one JSON record (a line as pino writes it) into what is written; null: JSON as it is. */
export type LineFormatter = ((line: string) => string) | null;

export async function lineFormatter(
  format: LogFormat,
  env: NodeJS.ProcessEnv = process.env,
  stderr: { isTTY?: boolean } = process.stderr,
): Promise<LineFormatter> {
  if (format === 'json') return null;
  // Loaded only when used: every `aionbd rpc` call would otherwise pay for it.
  const { prettyFactory } = await import('pino-pretty');
  // Colours only for a terminal, and never against the user's NO_COLOR (https://no-color.org).
  const colorize = stderr.isTTY === true && (env['NO_COLOR'] ?? '') === '';
  const pretty: (record: string) => string = prettyFactory({
    colorize,
    translateTime: 'SYS:HH:MM:ss.l',
    // The process's name, pid and host are the same on every line; the fields come inline instead
    // of as an indented object, and an error as its message (its stack is in --log-format json).
    ignore: 'pid,hostname,name,err',
    hideObject: true,
    singleLine: true,
    messageFormat: inline,
  });
  // pino-pretty leaves the line unterminated when hideObject drops the object part.
  return (line) => {
    const text = pretty(line);
    return text.endsWith('\n') ? text : `${text}\n`;
  };
}

const NOT_FIELDS = new Set(['level', 'time', 'name', 'pid', 'hostname', 'err']);

/** The message, then each field as key=value (logfmt's shape, which people and grep both read). */
function inline(log: Record<string, unknown>, messageKey: string): string {
  let out = typeof log[messageKey] === 'string' ? log[messageKey] : '';
  for (const [k, v] of Object.entries(log)) {
    if (k !== messageKey && !NOT_FIELDS.has(k)) out += ` ${k}=${fieldText(v)}`;
  }
  const err = log['err'];
  if (typeof err === 'object' && err !== null && 'message' in err && typeof err.message === 'string')
    out += ` err=${fieldText(err.message)}`;
  return out;
}

function fieldText(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v) ?? String(v);
}
