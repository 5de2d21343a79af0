import fs from 'node:fs';

/**
 * Kernel AIO contexts a process holds: each io_setup maps a ring named [aio]. Unlike
 * /proc/sys/fs/aio-nr this is per process, so other work on the machine cannot move it.
 */
export function aioContexts(pid: number | 'self' = 'self'): number {
  return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter((l) => l.includes('/[aio]')).length;
}
