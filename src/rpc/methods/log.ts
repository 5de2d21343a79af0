// log_set_level / log_get_level, with SPDK's params and results: the level of the live log (every
// connection and bdev logger follows it at once).
//
// SPDK has five levels, pino six; they pair up by meaning, and SPDK's NOTICE and INFO both mean
// pino's info (SPDK prints NOTICE by default, pino info). log_get_level names info by the one of
// the two that was set last (NOTICE until INFO is), so a name set is the name read back. pino's
// own names are taken too, for the levels SPDK has no name for (fatal, trace, silent).
import type { JSONSchemaType } from 'ajv';
import { RpcInvalidParamsError } from '../../errors.js';
import { isLogLevel, setLiveLevel, type LogLevel } from '../../log.js';
import type { MethodSpec } from '../../method.js';
import { str } from '../../method_form.js';
import type { RpcHost } from '../dispatcher.js';
import { method, method0 } from './method.js';

const SPDK_LEVELS: Readonly<Record<string, LogLevel>> = { ERROR: 'error', WARNING: 'warn', NOTICE: 'info', INFO: 'info', DEBUG: 'debug' };
const SPDK_NAMES: Readonly<Partial<Record<LogLevel, string>>> = { error: 'ERROR', warn: 'WARNING', debug: 'DEBUG' };

interface SetLevel {
  level: string;
}
const setLevel: JSONSchemaType<SetLevel> = {
  type: 'object',
  properties: { level: { type: 'string' } },
  required: ['level'],
  additionalProperties: false,
};

/** Which of NOTICE and INFO each host's log level was last set with (NOTICE until INFO is). */
const infoNames = new WeakMap<RpcHost, 'NOTICE' | 'INFO'>();

export const LOG_METHODS: readonly MethodSpec<RpcHost>[] = [
  method(
    'log_set_level',
    setLevel,
    (p, s) => {
      const upper = p.level.toUpperCase(),
        lower = p.level.toLowerCase();
      const level = SPDK_LEVELS[upper] ?? (isLogLevel(lower) ? lower : undefined);
      if (level === undefined) {
        throw new RpcInvalidParamsError(
          `Invalid parameters: level "${p.level}" is not ERROR, WARNING, NOTICE, INFO or DEBUG (nor pino's fatal, trace or silent)`,
        );
      }
      if (upper === 'NOTICE' || upper === 'INFO') infoNames.set(s, upper);
      const from = s.log.level;
      setLiveLevel(s.log, level);
      s.log.info({ from, to: level }, 'log level set over JSON-RPC'); // unseen when the new level is quieter, as asked
      return true;
    },
    { args: [str('level', false, "ERROR, WARNING, NOTICE, INFO or DEBUG (case does not matter); also pino's fatal, trace, silent")] },
  ),
  method0('log_get_level', (s) => {
    const level = s.log.level;
    if (level === 'info') return infoNames.get(s) ?? 'NOTICE';
    return (isLogLevel(level) ? SPDK_NAMES[level] : undefined) ?? level.toUpperCase();
  }),
];
