// One pino logger for the process; modules take children of it. Logs go to stderr so that a
// command's stdout carries only what the user asked for (the attach line, RPC JSON).
import { pino, destination, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** pino's levels, as `--log-level` and `log_set_level` take them. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

// A pino child copies its parent's level when it is made and keeps it, so a level changed at run
// time (log_set_level) would reach only loggers made afterwards: connections and bdevs already
// running would keep the old one. Every logger made from ours is remembered (weakly: a closed
// connection's logger must not stay alive for this), and setLiveLevel() walks them.
const followers = new Set<WeakRef<Logger>>();
const forget = new FinalizationRegistry<WeakRef<Logger>>((ref) => {
  followers.delete(ref);
});

function follow(child: Logger): void {
  const ref = new WeakRef(child);
  followers.add(ref);
  forget.register(child, ref);
}

/** A logger whose children follow setLiveLevel(); `dest` defaults to stderr, written synchronously. */
export function createLogger(level: string, dest: DestinationStream = destination({ fd: 2, sync: true })): Logger {
  return pino({ level, base: { name: 'aionbd' }, onChild: follow }, dest);
}

let root: Logger = createLogger(process.env['AIONBD_LOG_LEVEL'] ?? 'info');

export function logger(): Logger {
  return root;
}

/** Replaces the root logger (the CLI sets the level; an embedding program may pass its own). */
export function setLogger(l: Logger): void {
  root = l;
}

/**
 * Sets the level of `log` and of every logger made from it since that still had its level (a
 * child given a level of its own keeps it). Children of loggers not made by createLogger() are
 * not known here: only `log` itself changes for those.
 */
export function setLiveLevel(log: Logger, level: string): void {
  const was = log.level;
  log.level = level;
  for (const ref of followers) {
    const l = ref.deref();
    if (l === undefined) followers.delete(ref);
    else if (l !== log && l.level === was && isDescendant(l, log)) l.level = level;
  }
}

// pino makes a child with Object.create(parent): the prototype chain is the family tree.
function isDescendant(l: Logger, ancestor: Logger): boolean {
  return Object.prototype.isPrototypeOf.call(ancestor, l);
}

export function setLogLevel(l: string): void {
  setLiveLevel(root, l);
}

/** A logger that drops everything, for embedded use that wants silence. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
