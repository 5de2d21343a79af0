import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/**
 * Kernel AIO contexts a process holds: each io_setup maps a ring named [aio]. Unlike
 * /proc/sys/fs/aio-nr this is per process, so other work on the machine cannot move it.
 */
export function aioContexts(pid: number | 'self' = 'self'): number {
  return fs
    .readFileSync(`/proc/${pid}/maps`, 'utf8')
    .split('\n')
    .filter((l) => l.includes('/[aio]')).length;
}

// io_setup in another process, ever smaller until the kernel refuses even one event (or 64
// contexts are held): what a machine whose fs.aio-max-nr other programs used up looks like.
const HOG = String.raw`
import ctypes, os, sys
nr = {'x86_64': 206, 'aarch64': 0}[os.uname().machine]
libc = ctypes.CDLL(None, use_errno=True)
n = min(int(open('/proc/sys/fs/aio-max-nr').read()), 1 << 20)
held = []
while n >= 1 and len(held) < 64:
    ctx = ctypes.c_ulong(0)
    if libc.syscall(nr, ctypes.c_long(n), ctypes.byref(ctx)) == 0:
        held.append(ctx)
    else:
        n //= 2
print(len(held), flush=True)
sys.stdin.read()
`;

export interface AioHog {
  contexts: number;
  release(): Promise<void>;
}

/**
 * Takes every AIO context still free on the machine, in a child process, until release().
 * Keep the window short: every process on the machine is refused io_setup meanwhile.
 */
export async function hogAioContexts(): Promise<AioHog> {
  const child: ChildProcess = spawn('python3', ['-c', HOG], { stdio: ['pipe', 'pipe', 'inherit'] });
  const release = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.stdin?.end();
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  const contexts = await new Promise<number>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('the AIO hog did not start within 10 s'));
    }, 10_000);
    child.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) {
        clearTimeout(t);
        resolve(Number(out.trim()));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`the AIO hog exited with ${code} before it was ready`));
    });
  });
  return { contexts, release };
}
