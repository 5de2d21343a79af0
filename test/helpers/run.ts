// Runs a command to completion under a time limit and captures what it printed.
import { spawn } from 'node:child_process';

export interface RunResult {
  /** Exit code, or null when a signal ended the process. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The process outlived timeoutMs and was killed with SIGKILL. */
  timedOut: boolean;
  /** The command line, for assertion messages. */
  command: string;
}

export interface RunOptions {
  /** Killed with SIGKILL after this long (default 60 s). */
  timeoutMs?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed (stdin is /dev/null without it). */
  input?: string | Buffer;
  /** Output beyond this many bytes per stream is dropped (default 8 MiB). */
  maxOutputBytes?: number;
}

/**
 * Resolves when the process exits (whatever its code); rejects only when it cannot be
 * started at all (ENOENT, EACCES).
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const max = opts.maxOutputBytes ?? 8 << 20;
  const command = [cmd, ...args].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    child.stdout?.on('data', (b: Buffer) => {
      if (outLen < max) {
        out.push(b);
        outLen += b.length;
      }
    });
    child.stderr?.on('data', (b: Buffer) => {
      if (errLen < max) {
        err.push(b);
        errLen += b.length;
      }
    });
    if (opts.input !== undefined && child.stdin !== null) child.stdin.end(opts.input);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command}: ${e.message}`, { cause: e }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        timedOut,
        command,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

/** Like run(), but throws (with the command, exit status and stderr) unless it exits 0. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(explain(r));
  return r;
}

/** A one-paragraph account of a finished command, for assertion messages. */
export function explain(r: RunResult): string {
  const how = r.timedOut ? 'timed out' : r.code !== null ? `exited ${r.code}` : `was killed by ${r.signal ?? '?'}`;
  return `${r.command} ${how}\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-4000)}`;
}

/** One shell word for `s` (bare when it is safe bare). */
export function quote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
