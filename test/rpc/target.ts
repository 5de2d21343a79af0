// `aionbd serve` as a child process with its JSON-RPC socket in a fresh directory, and
// `aionbd rpc` (the built CLI, spawned as a user runs it) pointed at it.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach } from 'vitest';
import { explain, run, type RunResult } from '../helpers/run.js';
import { BIN, requireBuilt } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';

export interface RpcTarget {
  readonly dir: string;
  readonly rpcSock: string;
  readonly nbdSock: string;
  readonly proc: ChildProcess;
  readonly stderr: string;
  readonly stdout: string;
  /** `aionbd rpc -s <sock> ...args`, whatever its exit code. */
  rpc(...args: string[]): Promise<RunResult>;
  /** Like rpc(), but throws unless it exits 0; returns stdout without the final newline. */
  ok(...args: string[]): Promise<string>;
  /** ok(), parsed as JSON. */
  json(...args: string[]): Promise<unknown>;
  uri(exportName: string): string;
  file(name: string): string;
  /** SIGTERM, wait (bounded) for the exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** Kills if still running and removes the directory. */
  cleanup(): Promise<void>;
}

export function rpcCli(sock: string, args: string[], input?: string): Promise<RunResult> {
  return run(process.execPath, [BIN, 'rpc', '-s', sock, ...args], { timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) });
}

export interface TargetOptions {
  /** Extra `serve` arguments. Without --aio or --config, an empty config is given (no default disk). */
  args?: string[];
  /** Runs in the directory before the server starts. */
  prepare?: (dir: string) => void;
  /** Reuse this directory (a restart); it is not removed by cleanup(). */
  dir?: string;
  /** --allow-path roots, relative to the directory (default: the directory itself). */
  allowPath?: string[];
}

export async function startTarget(opts: TargetOptions = {}): Promise<RpcTarget> {
  requireBuilt();
  const dir = opts.dir ?? tmpDir('aionbd-rpc-');
  const ownsDir = opts.dir === undefined;
  opts.prepare?.(dir);
  const rpcSock = path.join(dir, 'rpc.sock'),
    nbdSock = path.join(dir, 'nbd.sock');
  const allow = (opts.allowPath ?? ['.']).flatMap((p) => ['--allow-path', path.resolve(dir, p)]);
  const args = ['serve', '--listen', `unix:${nbdSock}`, '--rpc', rpcSock, ...allow, ...(opts.args ?? [])];
  if (!args.includes('--aio') && !args.includes('--config')) {
    fs.writeFileSync(path.join(dir, 'empty.json'), '{"subsystems": []}');
    args.push('--config', path.join(dir, 'empty.json'));
  }
  const proc = spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '',
    stderr = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (s: string) => {
    stdout += s;
  });
  proc.stderr.on('data', (s: string) => {
    if (stderr.length < 4 << 20) stderr += s;
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  // Ready once the NBD listener is up: the server binds it after the JSON-RPC socket.
  const ready = await new Promise<boolean>((resolve) => {
    const check = (): void => {
      if (stderr.includes('"msg":"listening"')) {
        done();
        resolve(true);
      }
    };
    const timer = setTimeout(() => {
      done();
      resolve(false);
    }, 15_000);
    const onExit = (): void => {
      done();
      resolve(false);
    };
    const done = (): void => {
      clearTimeout(timer);
      proc.stderr.off('data', check);
      proc.off('exit', onExit);
    };
    proc.stderr.on('data', check);
    proc.once('exit', onExit);
    check();
  });
  let cleaned: Promise<void> | null = null;
  const t: RpcTarget = {
    dir,
    rpcSock,
    nbdSock,
    proc,
    get stderr() {
      return stderr;
    },
    get stdout() {
      return stdout;
    },
    rpc: (...a) => rpcCli(rpcSock, a),
    async ok(...a) {
      const r = await rpcCli(rpcSock, a);
      if (r.code !== 0) throw new Error(explain(r));
      return r.stdout.replace(/\n$/, '');
    },
    async json(...a) {
      return JSON.parse(await t.ok(...a)) as unknown;
    },
    uri: (name) => `nbd+unix:///${encodeURIComponent(name)}?socket=${nbdSock}`,
    file: (name) => path.join(dir, name),
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000))]);
      if (code === 'timeout') {
        proc.kill('SIGKILL');
        throw new Error(`aionbd serve did not stop on SIGTERM\n${stderr.slice(-4000)}`);
      }
      return code;
    },
    cleanup() {
      cleaned ??= (async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill('SIGKILL');
          await exited;
        }
        if (ownsDir) rmrf(dir);
      })();
      return cleaned;
    },
  };
  if (!ready) {
    await t.cleanup();
    throw new Error(`aionbd ${args.join(' ')} did not start\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr.slice(-4000)}`);
  }
  return t;
}

/** A file of `size` zero bytes (written, so that it is not sparse trouble for anyone). */
export function makeFile(file: string, size: number): string {
  const fd = fs.openSync(file, 'w');
  fs.ftruncateSync(fd, size);
  fs.closeSync(fd);
  return file;
}

/** A startTarget() for the tests of a describe block: each target it starts is cleaned up after its test. */
export function targetPerTest(): (opts?: TargetOptions) => Promise<RpcTarget> {
  const targets: RpcTarget[] = [];
  afterEach(async () => {
    for (const t of targets.splice(0)) await t.cleanup();
  });
  return async (opts) => {
    const t = await startTarget(opts);
    targets.push(t);
    return t;
  };
}
