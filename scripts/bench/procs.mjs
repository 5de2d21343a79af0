// Every child process the benchmark starts (servers and fio) is registered here, so that an
// error, a signal or a plain exit never leaves one running.
import { spawn } from 'node:child_process';

/**
 * @typedef {object} Child
 * @property {import('node:child_process').ChildProcess} proc
 * @property {number} pid
 * @property {string} command
 * @property {() => string} stdout
 * @property {() => string} stderr
 * @property {Promise<{code: number|null, signal: NodeJS.Signals|null}>} exited
 * @property {() => boolean} running
 * @property {(timeoutMs?: number) => Promise<void>} stop   SIGTERM, then SIGKILL after timeoutMs
 */

/** @type {Set<Child>} */
const live = new Set();

process.once('exit', () => {
  for (const c of live) if (c.running()) c.proc.kill('SIGKILL');
});

const MAX_CAPTURE = 4 << 20;

/**
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ cwd?: string, env?: NodeJS.ProcessEnv }} [opts]
 * @returns {Child}
 */
export function startChild(cmd, args, opts = {}) {
  const proc = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (/** @type {string} */ s) => {
    if (out.length < MAX_CAPTURE) out += s;
  });
  proc.stderr.on('data', (/** @type {string} */ s) => {
    if (err.length < MAX_CAPTURE) err += s;
  });
  /** @type {Promise<{code: number|null, signal: NodeJS.Signals|null}>} */
  const exited = new Promise((resolve) => {
    proc.once('close', (code, signal) => resolve({ code, signal }));
    proc.once('error', (e) => {
      err += `\n${e.message}`;
      resolve({ code: null, signal: null });
    });
  });
  /** Whether the child exits within ms; the timer never outlives the wait. */
  const exitedWithin = (/** @type {number} */ ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      void exited.then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  const running = () => proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined;
  /** @type {Child} */
  const child = {
    proc,
    pid: proc.pid ?? -1,
    command: [cmd, ...args].join(' '),
    stdout: () => out,
    stderr: () => err,
    exited,
    running,
    async stop(timeoutMs = 10_000) {
      if (running()) {
        proc.kill('SIGTERM');
        if (!(await exitedWithin(timeoutMs)) && running()) {
          proc.kill('SIGKILL');
          await exitedWithin(5_000);
        }
      }
      live.delete(child);
    },
  };
  live.add(child);
  void exited.then(() => {
    live.delete(child);
  });
  return child;
}

/** Stops every child still running (servers and fio alike). */
export async function stopAll() {
  await Promise.all([...live].map((c) => c.stop(5_000)));
}

/**
 * @param {number} ms
 * @returns {Promise<void>}
 */
export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
