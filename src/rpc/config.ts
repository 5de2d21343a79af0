// Config files in SPDK's save_config format: {"subsystems": [{"subsystem": "bdev",
// "config": [{"method", "params"}, ...]}, ...]}. Loading one replays each entry as an RPC.
import fs from 'node:fs';
import { ConfigError } from '../errors.js';
import type { ConfigEntry } from '../bdev/types.js';
import type { CallContext } from '../method.js';
import { isObject } from '../util/is_object.js';
import type { RpcHost } from './dispatcher.js';

/** Subsystems we apply, in dependency order (exports need their bdevs). */
const ORDER = ['bdev', 'nbd'];

/**
 * Checks the shape, as SPDK's loader does at start-up, and returns the entries in the order to
 * apply. Subsystems we do not have (SPDK's iobuf, accel, sock...) are reported in `skipped`.
 */
export function configEntries(cfg: unknown, skipped: string[] = []): ConfigEntry[] {
  if (!isObject(cfg)) throw new ConfigError('the configuration is not a JSON object ("not enclosed in {}")');
  const subs = cfg['subsystems'];
  if (!Array.isArray(subs)) throw new ConfigError('"subsystems" must be an array');
  const bySub = new Map<string, ConfigEntry[]>();
  for (const s of subs) {
    if (!isObject(s) || typeof s['subsystem'] !== 'string') throw new ConfigError('each subsystem needs a "subsystem" name');
    const name = s['subsystem'];
    const list = s['config'];
    if (list === null || list === undefined) continue;
    if (!Array.isArray(list)) throw new ConfigError(`"config" of subsystem "${name}" must be an array`);
    if (list.length === 0) continue;
    if (!ORDER.includes(name)) {
      skipped.push(name);
      continue;
    }
    const entries: ConfigEntry[] = [];
    for (const e of list) {
      if (!isObject(e) || typeof e['method'] !== 'string') throw new ConfigError(`an entry of subsystem "${name}" has no "method"`);
      const params = e['params'];
      if (params !== undefined && params !== null && !isObject(params))
        throw new ConfigError(`"params" of ${e['method']} must be an object`);
      entries.push(params === undefined || params === null ? { method: e['method'] } : { method: e['method'], params });
    }
    bySub.set(name, [...(bySub.get(name) ?? []), ...entries]);
  }
  return ORDER.flatMap((n) => bySub.get(n) ?? []);
}

/** Applies every entry through `call`, stopping at the first failure (named with its method). */
export async function applyConfig(
  cfg: unknown,
  call: (method: string, params: unknown) => Promise<unknown>,
  skipped: string[] = [],
): Promise<void> {
  for (const e of configEntries(cfg, skipped)) {
    try {
      await call(e.method, e.params);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new ConfigError(`config entry ${e.method}${e.params !== undefined ? ` ${JSON.stringify(e.params)}` : ''} failed: ${why}`, {
        cause: err,
      });
    }
  }
}

/**
 * Applies a config (save_config format) entry by entry through the host's methods, with the
 * caller's rights: over RPC, file paths in it are checked as RPC paths are.
 */
export async function loadConfig(host: RpcHost, cfg: unknown, call: CallContext): Promise<void> {
  const skipped: string[] = [];
  await applyConfig(cfg, (method, params) => host.rpc.call(method, params, call), skipped);
  if (skipped.length > 0) host.log.warn({ subsystems: skipped }, 'config: subsystems aionbd does not have were skipped');
}

/** Reads a config file (JSON). */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError(`${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}
