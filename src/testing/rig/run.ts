// Runs the host's tools (apt-get, dpkg-deb, depmod, xz, ...) for the kernel cache.

import { spawn } from 'node:child_process';

const SBIN_PATH = '/usr/local/sbin:/usr/sbin:/sbin';

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs a program to completion; never throws for a non-zero exit (the caller decides). */
export function run(cmd: string, args: readonly string[], opts: { cwd?: string; input?: Buffer } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    // Non-root users often lack the sbin directories, where depmod and
    // modinfo live.
    const env = { ...process.env, PATH: `${process.env['PATH'] ?? '/usr/bin:/bin'}:${SBIN_PATH}`, LC_ALL: 'C' };
    const child = spawn(cmd, args, { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new Error(`cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      resolve({
        code: code ?? (signal !== null ? 128 : 1),
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    // A tool may stop reading before the input ends (xz --single-stream after its stream, when
    // vmlinux.ts feeds it a whole bzImage): the EPIPE that follows is not a failure, the exit
    // code and output say how it went.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input);
  });
}

/** As run(), but resolves with stdout only on exit 0 and throws with stderr otherwise. */
export async function runOk(cmd: string, args: readonly string[], opts: { cwd?: string } = {}): Promise<Buffer> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  return r.stdout;
}
