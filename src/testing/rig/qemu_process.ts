// QEMU must not outlive the test process that started it: setpriv's parent-death signal covers
// a crash or a kill by the test runner, an exit hook covers process.exit().

import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

// If the test process dies without closing its VMs, take them along:
// setpriv's parent-death signal covers crashes, this covers process.exit().
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/** argv run under setpriv --pdeathsig KILL where setpriv exists. */
export function orphanProofArgv(argv: readonly string[]): string[] {
  return SETPRIV !== undefined ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...argv] : [...argv];
}

/** Kills `child` when this process exits, until untrack(). */
export function track(child: ChildProcess): void {
  live.add(child);
  installExitHook();
}

export function untrack(child: ChildProcess): void {
  live.delete(child);
}
