// --pidfile FILE: our pid, written once the server listens (so a supervisor that sees the file may
// connect at once), removed when we exit.
import fs from 'node:fs';
import path from 'node:path';
import { SystemError, describeOpenError } from '../errors.js';

function failure(file: string, err: unknown): SystemError {
  const e = err as NodeJS.ErrnoException;
  return new SystemError(`cannot write the pid file ${describeOpenError(file, e)}`, typeof e.errno === 'number' ? -e.errno : 5, {
    cause: e,
  });
}

export class PidFile {
  #written = false;

  /** Checks, before anything is started, that the file can be made where it is asked for. */
  constructor(readonly file: string) {
    try {
      fs.accessSync(path.dirname(path.resolve(file)), fs.constants.W_OK);
    } catch (err) {
      throw failure(file, err);
    }
  }

  /** Whole or not at all: a reader never sees a half-written pid (written aside, then renamed). */
  write(): void {
    const aside = `${this.file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(aside, `${process.pid}\n`, { mode: 0o644 });
      fs.renameSync(aside, this.file);
    } catch (err) {
      fs.rmSync(aside, { force: true });
      throw failure(this.file, err);
    }
    this.#written = true;
  }

  /** Removes the file if it is still ours (another process may have taken the name since). */
  remove(): void {
    if (!this.#written) return;
    this.#written = false;
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      return;
    } // removed by someone else
    if (text.trim() === String(process.pid)) fs.rmSync(this.file, { force: true });
  }
}
