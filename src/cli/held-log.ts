// The log of a start-up, held until the start succeeds. A failed start then ends with its one
// "aionbd:" line alone: records such as "listening" or "created sparse image" written just
// before it would describe a listener already closed or a file already removed.
import fs from 'node:fs';
import { pino, type DestinationStream, type Logger } from 'pino';

/** Levels at which a failed start still shows its held records (the user asked for detail). */
const VERBOSE = new Set(['debug', 'trace']);

export class HeldLog implements DestinationStream {
  #held: string[] | null = [];

  constructor(private readonly fd = 2) {}

  write(line: string): void {
    if (this.#held !== null) this.#held.push(line);
    else fs.writeSync(this.fd, line);
  }

  /** The start succeeded (or is being stopped by a signal): what was held is written, and from now on everything. */
  release(): void {
    const held = this.#held;
    this.#held = null;
    if (held !== null && held.length > 0) fs.writeSync(this.fd, held.join(''));
  }

  /** The start failed: the held records are dropped, unless `level` asked for detail. */
  fail(level: string): void {
    if (VERBOSE.has(level)) { this.release(); return; }
    this.#held = null;
  }
}

/** The process logger (as log.ts makes it) writing through `dest`. */
export function heldLogger(level: string, dest: HeldLog): Logger {
  return pino({ level, base: { name: 'aionbd' } }, dest);
}
