// The log of a start-up, held until the start succeeds. A failed start then ends with its one
// "aionbd:" line alone: records such as "listening" or "created sparse image" written just
// before it would describe a listener already closed or a file already removed.
import fs from 'node:fs';
import type { DestinationStream, Logger } from 'pino';
import type { AionbdError } from '../errors.js';
import { createLogger, logger, setLogger } from '../log.js';
import { lineFormatter, resolveLogFormat, type LineFormatter, type LogFormat } from './log-format.js';

/** Levels at which a failed start still shows its held records (the user asked for detail). */
const VERBOSE = new Set(['debug', 'trace']);

export class HeldLog implements DestinationStream {
  #held: string[] | null = [];

  /** `format` turns each JSON record into the text written (--log-format pretty); null: as it is. */
  constructor(
    private readonly fd = 2,
    private readonly format: LineFormatter = null,
  ) {}

  write(line: string): void {
    const text = this.format === null ? line : this.format(line);
    if (this.#held !== null) this.#held.push(text);
    else fs.writeSync(this.fd, text);
  }

  /** The start succeeded (or is being stopped by a signal): what was held is written, and from now on everything. */
  release(): void {
    const held = this.#held;
    this.#held = null;
    if (held !== null && held.length > 0) fs.writeSync(this.fd, held.join(''));
  }

  /** The start failed: the held records are dropped, unless `level` asked for detail. */
  fail(level: string): void {
    if (VERBOSE.has(level)) {
      this.release();
      return;
    }
    this.#held = null;
  }
}

/** The process logger (as log.ts makes it) writing through `dest`. */
export function heldLogger(level: string, dest: HeldLog): Logger {
  return createLogger(level, dest);
}

/** The log of the running command, once it has set one up (serve, attach). */
interface CommandLog {
  held: HeldLog;
  format: LogFormat;
}
let commandLog: CommandLog | null = null;

/**
 * Sets up the process logger of a command that logs: its level, its format (--log-format, else by
 * whether stderr is a terminal), and the holding of the start-up's records. Returns the HeldLog.
 */
export async function startCommandLog(level: string, asked: LogFormat | undefined): Promise<HeldLog> {
  const format = resolveLogFormat(asked);
  const held = new HeldLog(2, await lineFormatter(format));
  setLogger(heldLogger(level, held));
  commandLog = { held, format };
  return held;
}

/**
 * An expected failure, logged as the README promises: in JSON a structured record (for the
 * machine that reads the log) comes before the "aionbd:" line; for a person reading pretty lines
 * that line is the record, so nothing else is written unless debug asked for it.
 */
export function logFailure(err: AionbdError): void {
  const log = logger();
  commandLog?.held.fail(log.level); // a failure before serve() held anything back: write from now on
  const fields = { code: err.code, exitCode: err.exitCode, ...(err.errno !== undefined ? { errno: err.errno } : {}) };
  if (commandLog?.format === 'json') log.error(fields, err.message);
  else log.debug({ ...fields, err }, err.message);
}
