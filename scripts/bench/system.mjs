// What the benchmark needs from the machine: tools (installed with apt-get when missing and we
// are root), a built aionbd, facts for the report, and per-process CPU and memory from /proc.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Executable -> the Debian package that ships it. */
const TOOL_PACKAGES = Object.freeze({ fio: 'fio', 'qemu-nbd': 'qemu-utils', nbdkit: 'nbdkit', 'stress-ng': 'stress-ng' });
/** The chart's text needs a font; resvg draws none without one. */
const FONT_PACKAGE = 'fonts-dejavu-core';

/**
 * @param {string} name
 * @returns {boolean}
 */
export function onPath(name) {
  return (process.env['PATH'] ?? '')
    .split(':')
    .filter((d) => d !== '')
    .some((d) => {
      try {
        fs.accessSync(path.join(d, name), fs.constants.X_OK);
        return true;
      } catch {
        return false; // not in this directory
      }
    });
}

/**
 * @param {string} pkg
 * @returns {boolean}
 */
function dpkgInstalled(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

function hasFonts() {
  if (dpkgInstalled(FONT_PACKAGE)) return true;
  const r = spawnSync('fc-list', [], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '';
}

/**
 * Makes fio, the tools of `targets` and the `wanted` extras available: installs the missing
 * ones with apt-get when allowed and root. Returns the targets that can run; throws when fio
 * itself is missing. A missing extra is the caller's to work around.
 * @param {import('./targets.mjs').Target[]} targets
 * @param {string[]} wanted      optional tools (stress-ng)
 * @param {boolean} install
 * @param {(line: string) => void} say
 * @returns {import('./targets.mjs').Target[]}
 */
export function ensureTools(targets, wanted, install, say) {
  const needed = [...new Set(['fio', ...wanted, ...targets.map((t) => t.tool).filter((x) => x !== null)])];
  const missing = needed.filter((t) => !onPath(t));
  const pkgs = missing.map((t) => /** @type {Record<string, string>} */ (TOOL_PACKAGES)[t] ?? t);
  if (!hasFonts()) pkgs.push(FONT_PACKAGE);
  if (pkgs.length > 0) {
    const root = typeof process.getuid === 'function' && process.getuid() === 0;
    if (install && root && onPath('apt-get')) {
      say(`installing ${pkgs.join(' ')} with apt-get`);
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      const upd = spawnSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env, timeout: 600_000 });
      const ins =
        upd.status === 0
          ? spawnSync('apt-get', ['install', '-y', '-qq', ...pkgs], { stdio: ['ignore', 'ignore', 'inherit'], env, timeout: 1_200_000 })
          : upd;
      if (ins.status !== 0) say(`apt-get install ${pkgs.join(' ')} failed (exit ${String(ins.status)})`);
    } else {
      say(`missing ${pkgs.join(' ')}: ${install ? 'run as root to install them, or' : ''} apt-get install ${pkgs.join(' ')}`);
    }
  }
  if (!onPath('fio')) throw new Error('fio is not installed (Debian: apt-get install fio)');
  return targets.filter((t) => {
    if (t.tool === null || onPath(t.tool)) return true;
    say(`skipping ${t.id}: ${t.tool} is not installed`);
    return false;
  });
}

/**
 * Builds the addon and dist/ with `npm run build` when either is missing.
 * @param {(line: string) => void} say
 */
export function ensureBuilt(say) {
  const need = [path.join(REPO_ROOT, 'dist', 'cli', 'main.js'), path.join(REPO_ROOT, 'build', 'Release', 'aionbd.node')];
  if (need.every((f) => fs.existsSync(f))) return;
  say('aionbd is not built: running npm run build');
  const r = spawnSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'], timeout: 900_000 });
  if (r.status !== 0) throw new Error(`npm run build failed (exit ${String(r.status)})`);
}

/**
 * @param {string} cmd
 * @param {string[]} args
 * @returns {string}
 */
function firstLine(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 && r.stdout === '') return 'unknown';
  return (r.stdout || r.stderr).split('\n')[0]?.trim() ?? 'unknown';
}

/**
 * Facts a reader needs to compare this run with another.
 * @param {string} imageDir
 * @returns {Record<string, string|number>}
 */
export function machineInfo(imageDir) {
  const cpu = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const fsType = spawnSync('stat', ['-f', '-c', '%T', imageDir], { encoding: 'utf8' }).stdout.trim() || 'unknown';
  const git = spawnSync('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  const dirty = spawnSync('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' });
  return {
    cpu,
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    imageFileSystem: fsType,
    node: process.version,
    fio: firstLine('fio', ['--version']),
    qemuNbd: onPath('qemu-nbd') ? firstLine('qemu-nbd', ['--version']) : 'not installed',
    nbdkit: onPath('nbdkit') ? firstLine('nbdkit', ['--version']) : 'not installed',
    stressNg: onPath('stress-ng') ? firstLine('stress-ng', ['--version']) : 'not installed',
    aionbdCommit: git.status === 0 ? git.stdout.trim() + (dirty.stdout.trim() !== '' ? ' (with uncommitted changes)' : '') : 'unknown',
  };
}

let clockTicks = 0;
/** Clock ticks per second, the unit of utime and stime in /proc/PID/stat. */
export function clkTck() {
  if (clockTicks === 0) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100; // getconf missing: Linux's USER_HZ is 100 on every common architecture
    }
  }
  return clockTicks;
}

/**
 * User plus system CPU seconds of a process, all its threads included (dead ones too).
 * @param {number} pid
 * @returns {number}
 */
export function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]); // field 14
  const stime = Number(rest[12]); // field 15
  return (utime + stime) / clkTck();
}

/**
 * Resets the process's peak RSS (VmHWM) to its current RSS, so that the next reading is the
 * peak of one run only. Returns false where the kernel or permissions refuse.
 * @param {number} pid
 * @returns {boolean}
 */
export function resetPeakRss(pid) {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false; // older kernel or not our process: the reading is then the peak since start
  }
}

/**
 * Peak resident set size in bytes (VmHWM).
 * @param {number} pid
 * @returns {number}
 */
export function peakRss(pid) {
  const m = /^VmHWM:\s*(\d+)\s*kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}
