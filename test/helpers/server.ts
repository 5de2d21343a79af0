// Starts `aionbd serve` as a child process (the built CLI, as a user runs it) in a fresh
// temporary directory, and waits until it says it is exporting. Every server started here
// is killed by stopAllServers() (call it in afterEach/afterAll) and, failing that, when the
// test process exits.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rmrf, tmpDir } from './tmp.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'aionbd.js');
const DIST_MAIN = path.join(REPO_ROOT, 'dist', 'cli', 'main.js');

export interface StartOptions {
  /** --aio specs; a relative FILE is taken inside the server's temporary directory. */
  aio?: string[];
  /** 'unix' (default): a socket in the temporary directory; 'tcp': 127.0.0.1 on a port the kernel picks. */
  transport?: 'unix' | 'tcp';
  /** More arguments after the generated ones (e.g. ['--queue-depth', '64']). */
  args?: string[];
  /** Exactly these arguments after `serve`: no --listen or --aio is added (the CLI's defaults apply). */
  rawArgs?: string[];
  /** How many "exporting" lines to wait for (default: one per --aio, or 1). */
  exports?: number;
  /** How long to wait for them (default 15 s); on expiry the child is killed and its stderr reported. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** A command the server runs under, which execs it (e.g. ['prlimit', '--nofile=1024:4096']). */
  wrapper?: string[];
  /** Runs in the fresh directory before the server starts (e.g. to write an image file). */
  prepare?: (dir: string) => void;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface TestServer {
  /** The temporary directory: the child's cwd, and where relative --aio files and the socket live. */
  readonly dir: string;
  /** The unix socket the server listens on, or null when it listens on TCP. */
  readonly socketPath: string | null;
  /** The TCP port it listens on, or null for a unix socket. */
  readonly port: number | null;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Everything printed so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when the child has exited. */
  readonly exited: Promise<ExitStatus>;
  /** An NBD URI for the export, on the first address the server printed. */
  uri(exportName: string): string;
  /** A path inside dir. */
  file(name: string): string;
  /** Resolves once stdout matches (bounded; rejects with the output on timeout or exit). */
  waitForStdout(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Sends the signal and waits (bounded) for the exit; SIGKILLs and throws if it does not come. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitStatus>;
  /** Kills the child if it still runs and removes dir. Safe to call twice. */
  cleanup(): Promise<void>;
}

const live = new Set<TestServer>();

process.once('exit', () => {
  // Last resort when a test forgot stopAllServers(): no child outlives the test process.
  for (const s of live) if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill('SIGKILL');
});

/** Kills every server started by this module that is still around, and removes their directories. */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...live].map((s) => s.cleanup()));
}

/** Throws a clear message unless the CLI has been built. */
export function requireBuilt(): void {
  if (!fs.existsSync(DIST_MAIN)) throw new Error(`${DIST_MAIN} is missing: run "npx tsc -p tsconfig.build.json" first`);
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0 }, () => {
      const a = srv.address();
      srv.close(() => {
        if (a !== null && typeof a === 'object') resolve(a.port);
        else reject(new Error('no port'));
      });
    });
  });
}

const EXPORTING = /^aionbd: exporting "([^"]*)" .* on (.+)$/;

export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
  requireBuilt();
  const dir = tmpDir('aionbd-srv-');
  try {
    opts.prepare?.(dir);
  } catch (err) {
    rmrf(dir);
    throw err;
  }
  const transport = opts.transport ?? 'unix';
  let args: string[];
  if (opts.rawArgs !== undefined) {
    args = [...opts.rawArgs];
  } else {
    const listen = transport === 'unix' ? `unix:${path.join(dir, 'nbd.sock')}` : 'tcp://127.0.0.1:0';
    args = ['--listen', listen];
    for (const spec of opts.aio ?? []) {
      const [file = '', ...rest] = spec.split(',');
      args.push('--aio', [path.resolve(dir, file), ...rest].join(','));
    }
    args.push(...(opts.args ?? []));
  }
  const want = opts.exports ?? Math.max(opts.aio?.length ?? 0, 1);
  const timeoutMs = opts.timeoutMs ?? 15_000;

  const [cmd, ...pre] = [...(opts.wrapper ?? []), process.execPath];
  const proc = spawn(cmd as string, [...pre, BIN, 'serve', ...args], {
    cwd: dir,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (s: string) => {
    stdout += s;
  });
  proc.stderr.on('data', (s: string) => {
    if (stderr.length < 4 << 20) stderr += s;
  });
  const exited = new Promise<ExitStatus>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
    proc.once('error', () => resolve({ code: null, signal: null }));
  });

  let socketPath: string | null = null;
  let port: number | null = null;
  let host = '127.0.0.1';
  let firstAddr = '';
  let cleaned: Promise<void> | null = null;

  const server: TestServer = {
    dir,
    proc,
    exited,
    pid: proc.pid ?? -1,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    get socketPath() {
      return socketPath;
    },
    get port() {
      return port;
    },
    uri(exportName: string): string {
      const name = encodeURIComponent(exportName);
      if (socketPath !== null) return `nbd+unix:///${name}?socket=${socketPath}`;
      return `nbd://${host}:${port ?? 0}/${name}`;
    },
    file: (name: string) => path.join(dir, name),
    waitForStdout(re: RegExp, waitMs = 10_000): Promise<RegExpExecArray> {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = re.exec(stdout);
          if (m !== null) {
            done();
            resolve(m);
          }
        };
        const fail = (why: string) => (): void => {
          done();
          reject(
            new Error(
              `aionbd stdout never matched ${String(re)} (${why})\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr.slice(-4000)}`,
            ),
          );
        };
        const onTimeout = fail(`waited ${waitMs} ms`);
        const onExit = fail('the server exited');
        const timer = setTimeout(onTimeout, waitMs);
        const done = (): void => {
          clearTimeout(timer);
          proc.stdout.off('data', check);
          proc.off('exit', onExit);
        };
        proc.stdout.on('data', check);
        proc.once('exit', onExit);
        check();
      });
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM', stopTimeoutMs = 15_000): Promise<ExitStatus> {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill(signal);
      const st = await Promise.race([exited, delay(stopTimeoutMs).then(() => null)]);
      if (st !== null) return st;
      proc.kill('SIGKILL');
      await exited;
      throw new Error(
        `aionbd (pid ${proc.pid ?? '?'}) did not exit within ${stopTimeoutMs} ms of ${signal}; stderr:\n${stderr.slice(-4000)}`,
      );
    },
    cleanup(): Promise<void> {
      cleaned ??= (async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill('SIGKILL');
          await Promise.race([exited, delay(5_000)]);
        }
        live.delete(server);
        rmrf(dir);
      })();
      return cleaned;
    },
  };
  live.add(server);

  // Ready when `want` complete "exporting" lines are out: the server prints them after every listener is bound.
  const ready = await new Promise<string | null>((resolve) => {
    const check = (): void => {
      const lines = stdout
        .split('\n')
        .slice(0, -1)
        .map((l) => EXPORTING.exec(l))
        .filter((m) => m !== null);
      if (lines.length >= want) {
        done();
        resolve(lines[0]?.[2] ?? '');
      }
    };
    const onExit = (): void => {
      done();
      resolve(null);
    };
    const timer = setTimeout(onExit, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      proc.stdout.off('data', check);
      proc.off('exit', onExit);
    };
    proc.stdout.on('data', check);
    proc.once('exit', onExit);
  });
  if (ready === null) {
    const status =
      proc.exitCode !== null || proc.signalCode !== null
        ? `exited (code ${String(proc.exitCode)}, signal ${String(proc.signalCode)})`
        : `printed no "exporting" line within ${timeoutMs} ms`;
    await server.cleanup();
    throw new Error(`aionbd serve ${args.join(' ')} ${status}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr.slice(-4000)}`);
  }
  firstAddr = ready.split(', ')[0] ?? '';
  if (firstAddr.startsWith('unix:')) {
    socketPath = firstAddr.slice('unix:'.length);
  } else {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:]+):(\d+)$/.exec(firstAddr);
    if (m === null) {
      await server.cleanup();
      throw new Error(`cannot parse the address in: ${firstAddr}`);
    }
    host = m[1] ?? host;
    port = Number(m[2]);
  }
  return server;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
