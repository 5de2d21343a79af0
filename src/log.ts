// One pino logger for the process; modules take children of it. Logs go to stderr so that a
// command's stdout carries only what the user asked for (the attach line, RPC JSON).
import { pino, destination, type Logger } from 'pino';

export type { Logger };

const level = process.env['AIONBD_LOG_LEVEL'] ?? 'info';

let root: Logger = pino({ level, base: { name: 'aionbd' } }, destination({ fd: 2, sync: true }));

export function logger(): Logger { return root; }

/** Replaces the root logger (the CLI sets the level; an embedding program may pass its own). */
export function setLogger(l: Logger): void { root = l; }

export function setLogLevel(l: string): void { root.level = l; }

/** A logger that drops everything, for embedded use that wants silence. */
export function silentLogger(): Logger { return pino({ level: 'silent' }); }
