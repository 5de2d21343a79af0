// A process that swaps two names with renameat2(RENAME_EXCHANGE) as fast as it can, for a
// bounded time: the attack on a check-then-open by name (--allow-path must open what it checked).
import { spawn, type ChildProcess } from 'node:child_process';

const SCRIPT = `
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
a, b, secs = sys.argv[1].encode(), sys.argv[2].encode(), float(sys.argv[3])
end, n = time.monotonic() + secs, 0
print("ready", flush=True)
while time.monotonic() < end and n < 50_000_000:
    if libc.syscall(316, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0:
        sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
    n += 1
# An even count leaves both names as they were.
if n % 2:
    libc.syscall(316, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
print(n, flush=True)
`;

export interface Swapper {
  /** Waits for the end (at most the time given + 10 s); resolves with the number of swaps. */
  done(): Promise<number>;
  proc: ChildProcess;
}

/** Starts swapping a and b (x86-64 syscall 316) for `seconds`; resolves once it runs. */
export async function startSwapper(a: string, b: string, seconds: number): Promise<Swapper> {
  const proc = spawn('python3', ['-c', SCRIPT, a, b, String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '',
    err = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (s: string) => {
    out += s;
  });
  proc.stderr.on('data', (s: string) => {
    err += s;
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`swapper did not start: ${err}`)), 10_000);
    const check = (): void => {
      if (out.startsWith('ready')) {
        clearTimeout(t);
        resolve();
      }
    };
    proc.stdout.on('data', check);
    void exited.then(() => {
      clearTimeout(t);
      reject(new Error(`swapper exited: ${err}`));
    });
  });
  return {
    proc,
    async done() {
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), (seconds + 10) * 1000))]);
      if (code === 'timeout') {
        proc.kill('SIGKILL');
        throw new Error('swapper did not stop');
      }
      if (code !== 0) throw new Error(`swapper failed: ${err}`);
      return Number(out.trim().split('\n').pop());
    },
  };
}
