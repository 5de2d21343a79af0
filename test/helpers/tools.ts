// External tools the integration tests drive. On a developer machine a missing tool skips
// the tests that need it (with a printed reason); with CI=true it fails them, because the
// README's test command installs every one of these.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The Debian package that ships each tool. */
export const TOOL_PACKAGES: Readonly<Record<string, string>> = {
  nbdinfo: 'libnbd-bin',
  nbdcopy: 'libnbd-bin',
  nbdfuse: 'nbdfuse',
  nbdsh: 'python3-libnbd',
  'qemu-img': 'qemu-utils',
  'qemu-io': 'qemu-utils',
  'qemu-nbd': 'qemu-utils',
  'qemu-system-x86_64': 'qemu-system-x86',
  fio: 'fio',
  'nbd-client': 'nbd-client',
  socat: 'socat',
  prometheus: 'prometheus',
  script: 'bsdutils',
};

export const isCI = (): boolean => process.env['CI'] === 'true' || process.env['CI'] === '1';

/** Whether an executable named `name` is on PATH (so spawn(name) finds it). */
export function onPath(name: string): boolean {
  const dirs = (process.env['PATH'] ?? '').split(':').filter((d) => d !== '');
  return dirs.some((d) => {
    try {
      fs.accessSync(path.join(d, name), fs.constants.X_OK);
      return fs.statSync(path.join(d, name)).isFile();
    } catch {
      return false; // not in this directory: try the next
    }
  });
}

function missingMessage(names: string[]): string {
  const pkgs = [...new Set(names.map((n) => TOOL_PACKAGES[n] ?? n))];
  return `${names.join(', ')} not found on PATH (Debian: apt-get install ${pkgs.join(' ')})`;
}

/**
 * Whether every named tool is on PATH. When one is missing: with CI=true this throws (the
 * test file fails, naming the Debian package); otherwise it prints why and returns false,
 * for `describe.skipIf(!tool('nbdinfo'))` / `it.skipIf(...)`.
 */
export function tool(...names: string[]): boolean {
  const missing = names.filter((n) => !onPath(n));
  if (missing.length === 0) return true;
  const msg = missingMessage(missing);
  if (isCI()) throw new Error(`CI=true and ${msg}`);
  process.stderr.write(`skipping tests: ${msg}\n`);
  return false;
}

/**
 * The environment nbdsh needs: nbdsh runs `python3 -m nbd`, and the first python3 on PATH
 * (a pyenv or venv one) may lack Debian's python3-libnbd module, which /usr/bin/python3 has.
 * Returns null when no python3 can import nbd.
 */
export function nbdshEnv(): NodeJS.ProcessEnv | null {
  const canImport = (python: string, env: NodeJS.ProcessEnv): boolean =>
    spawnSync(python, ['-c', 'import nbd'], { env, stdio: 'ignore', timeout: 10_000 }).status === 0;
  if (canImport('python3', process.env)) return process.env;
  if (fs.existsSync('/usr/bin/python3') && canImport('/usr/bin/python3', process.env)) {
    return { ...process.env, PATH: `/usr/bin:${process.env['PATH'] ?? ''}` };
  }
  return null;
}

/** tool('nbdsh'), and also a python3 that imports nbd (same skip/CI rules). */
export function nbdshTool(): boolean {
  if (!tool('nbdsh')) return false;
  if (nbdshEnv() !== null) return true;
  const msg = 'nbdsh is installed but no python3 on PATH (nor /usr/bin/python3) can "import nbd" (Debian: apt-get install python3-libnbd)';
  if (isCI()) throw new Error(`CI=true and ${msg}`);
  process.stderr.write(`skipping tests: ${msg}\n`);
  return false;
}
