// Runs a command on a pseudo-terminal, as a person at a terminal runs it, through util-linux's
// script(1): the command's stdout and stderr are both the terminal, and what it printed comes
// back as one text (the terminal's "\r\n" turned back into "\n").
import { quote, run, type RunOptions, type RunResult } from './run.js';

export async function runInPty(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  // -q: no "Script started" lines; -e: script exits with the command's status; -c: the command.
  const r = await run('script', ['-qec', [cmd, ...args].map(quote).join(' '), '/dev/null'], opts);
  return { ...r, stdout: r.stdout.replace(/\r\n/g, '\n') };
}

/** The text without terminal colour and cursor sequences (ESC [ ... letter). */
export function stripAnsi(s: string): string {
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '');
}
