// Debian's stock kernel and a small initramfs for the test VM, built once and
// cached.
//
// Layout under the cache directory ($AIONBD_CACHE_DIR, else ~/.cache/aionbd):
//   kernels/<kver>/vmlinuz              the kernel image (bzImage)
//   kernels/<kver>/vmlinux              the same, uncompressed ELF (booted via PVH)
//   kernels/<kver>/config               its build config (for reference)
//   kernels/<kver>/package              "<deb name> <deb version>"
//   kernels/<kver>/root/lib/modules/<kver>/  module tree with depmod's indexes
//   kernels/current                     <kver> chosen for this cache
//   initrd/<kver>-<recipe hash>.img     gzip'd newc cpio: busybox, init, modules
//
// Every entry is built under a temporary name in the same directory and
// renamed into place, so two processes building at once both end with a
// complete entry and neither sees a half-built one.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp, constants as fsConstants } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

import { STAGE1_INIT, STAGE2_LOOP } from './guest-init.js';

export interface KernelAssets {
  /** Path of the kernel image (bzImage). */
  kernel: string;
  /** Path of the initramfs built for it. */
  initrd: string;
  /** Kernel release, as `uname -r` prints it in the guest. */
  version: string;
  /** Directory holding `<version>/` with the full module tree (shared read-only with the guest). */
  modulesDir: string;
}

/** Modules the initramfs loads before it mounts the root (dependencies are added before each). */
export const BOOT_MODULES: readonly string[] = ['virtio_pci', 'virtio_console', 'virtio_net', '9pnet_virtio', '9p'];

/**
 * Modules the initramfs loads in the background, for the tests' use. Any
 * other module (xfs, dm-*, ...) loads on demand from the full tree, through
 * `modprobe` in the guest or the kernel's own requests (`mount -t xfs`):
 * xfs alone would add most of a second to every boot under TCG.
 */
export const EXTRA_MODULES: readonly string[] = [
  'nbd',
  'crc32c_generic',
  'crc32c_intel',
  'libcrc32c',
  'crc16',
  'ext4',
  'loop',
];

// Debian's package is ~400 MiB unpacked, mostly hardware drivers that a VM
// with virtio devices never loads; dropping them keeps the cache near 150 MiB.
const PRUNED_MODULE_DIRS: readonly string[] = [
  'sound',
  'drivers/gpu',
  'drivers/media',
  'drivers/infiniband',
  'drivers/usb',
  'drivers/iio',
  'drivers/staging',
  'drivers/net/wireless',
  'drivers/net/ethernet',
  'drivers/hid',
  'drivers/input',
  'drivers/comedi',
  'drivers/bluetooth',
  'net/wireless',
  'net/mac80211',
  'net/bluetooth',
];

// Bump when the initramfs recipe changes in a way the hash below cannot see.
const RECIPE_VERSION = 1;

const META_PACKAGE = 'linux-image-amd64';
const SBIN_PATH = '/usr/local/sbin:/usr/sbin:/sbin';

export function cacheDir(): string {
  const fromEnv = process.env['AIONBD_CACHE_DIR'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.cache', 'aionbd');
}

interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs a program to completion; never throws for a non-zero exit (the caller decides). */
export function run(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; input?: Buffer } = {},
): Promise<RunResult> {
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
    child.stdin.end(opts.input);
  });
}

async function runOk(cmd: string, args: readonly string[], opts: { cwd?: string } = {}): Promise<Buffer> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  return r.stdout;
}

async function exists(path: string): Promise<boolean> {
  try {
    await fsp.access(path, fsConstants.F_OK);
    return true;
  } catch {
    return false;
  }
}

function tmpName(dir: string, stem: string): string {
  return join(dir, `.tmp-${stem}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Writes a small file atomically (temp + rename), so readers never see it half written. */
async function writeAtomic(path: string, data: string | Buffer): Promise<void> {
  const tmp = tmpName(dirname(path), basename(path));
  await fsp.writeFile(tmp, data);
  await fsp.rename(tmp, path);
}

/** Removes what builds killed midway left behind (temp names older than an hour). */
async function sweepStaleTemps(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  const cutoff = Date.now() - 3_600_000;
  for (const n of names) {
    if (!n.startsWith('.tmp-')) continue;
    const p = join(dir, n);
    try {
      if ((await fsp.lstat(p)).mtimeMs < cutoff) await fsp.rm(p, { recursive: true, force: true });
    } catch {
      // Someone else swept it.
    }
  }
}

/** Renames a freshly built directory into place; if another process got there first, keeps theirs. */
async function renameDirIntoPlace(tmp: string, dest: string): Promise<void> {
  try {
    await fsp.rename(tmp, dest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') {
      await fsp.rm(tmp, { recursive: true, force: true });
      return;
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------
// Fetching the kernel package

interface Downloaded {
  deb: string;
  pkg: string;
  debVersion: string;
}

function aptOptions(): string[] {
  // apt drops to the _apt user for downloads and warns when that user cannot
  // write to the (temporary) target directory; as root there is nothing to
  // gain from the sandbox for a plain download.
  return process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
}

async function aptDownload(dir: string, spec: string): Promise<string> {
  const before = new Set(await fsp.readdir(dir));
  await runOk('apt-get', [...aptOptions(), '-q', 'download', spec], { cwd: dir });
  const added = (await fsp.readdir(dir)).filter((f) => !before.has(f) && f.endsWith('.deb'));
  const first = added[0];
  if (added.length !== 1 || first === undefined) {
    throw new Error(`apt-get download ${spec} left ${added.length} new .deb files in ${dir}`);
  }
  return join(dir, first);
}

/** Parses the metapackage's Depends into the real, versioned kernel package. */
export function parseKernelDepends(depends: string): { pkg: string; version: string | undefined } {
  for (const alt of depends.split(/[,|]/)) {
    const m = /^\s*(linux-image-[^\s(]+)\s*(?:\(\s*=\s*([^\s)]+)\s*\))?/.exec(alt);
    if (m?.[1] !== undefined) return { pkg: m[1], version: m[2] };
  }
  throw new Error(`no linux-image-* package in Depends: ${depends}`);
}

async function downloadKernelPackage(dir: string): Promise<Downloaded> {
  let announced = false;
  const attempt = async (): Promise<Downloaded> => {
    const meta = await aptDownload(dir, META_PACKAGE);
    const depends = (await runOk('dpkg-deb', ['-f', meta, 'Depends'])).toString('utf8').trim();
    const { pkg, version } = parseKernelDepends(depends);
    if (!announced) {
      announced = true;
      process.stderr.write(`aionbd: fetching Debian kernel package ${pkg} with apt-get download (first run only)\n`);
    }
    const deb = await aptDownload(dir, version !== undefined ? `${pkg}=${version}` : pkg);
    const debVersion = (await runOk('dpkg-deb', ['-f', deb, 'Version'])).toString('utf8').trim();
    return { deb, pkg, debVersion };
  };
  try {
    return await attempt();
  } catch (first) {
    // Missing or stale package lists are the usual cause (a fresh container,
    // or a security update that replaced the version the lists point at).
    const upd = await run('apt-get', ['-q', 'update']);
    if (upd.code !== 0) {
      throw new Error(
        `${(first as Error).message}\n(apt-get update also failed, exit ${upd.code}: ${upd.stderr.trim()})`,
      );
    }
    for (const f of await fsp.readdir(dir)) await fsp.rm(join(dir, f), { recursive: true, force: true });
    return attempt();
  }
}

async function findModulesDir(extracted: string): Promise<{ kver: string; dir: string }> {
  // bookworm ships /lib/modules; merged-/usr packages (trixie on) ship /usr/lib/modules.
  for (const base of ['lib/modules', 'usr/lib/modules']) {
    const p = join(extracted, base);
    if (!(await exists(p))) continue;
    const versions = await fsp.readdir(p);
    const kver = versions[0];
    if (versions.length === 1 && kver !== undefined) return { kver, dir: join(p, kver) };
  }
  throw new Error(`no single lib/modules/<version> directory in the kernel package`);
}

async function buildKernelDir(kernelsDir: string): Promise<string> {
  const work = tmpName(kernelsDir, 'fetch');
  await fsp.mkdir(work, { recursive: true });
  try {
    const dl = await downloadKernelPackage(work);
    const extracted = join(work, 'x');
    await runOk('dpkg-deb', ['-x', dl.deb, extracted]);
    await fsp.rm(dl.deb, { force: true });

    const { kver, dir: modSrc } = await findModulesDir(extracted);
    const stage = join(work, 'kernel');
    const modDest = join(stage, 'root', 'lib', 'modules', kver);
    await fsp.mkdir(dirname(modDest), { recursive: true });
    await fsp.rename(modSrc, modDest);
    await fsp.rename(join(extracted, 'boot', `vmlinuz-${kver}`), join(stage, 'vmlinuz'));
    await fsp.rename(join(extracted, 'boot', `config-${kver}`), join(stage, 'config')).catch(() => undefined);
    for (const d of PRUNED_MODULE_DIRS) {
      await fsp.rm(join(modDest, 'kernel', d), { recursive: true, force: true });
    }
    // The package leaves modules.dep to its postinst; generate it (and the
    // alias/softdep indexes) for the tree as pruned.
    await runOk('depmod', ['-b', join(stage, 'root'), kver]);
    await fsp.writeFile(join(stage, 'package'), `${dl.pkg} ${dl.debVersion}\n`);

    await renameDirIntoPlace(stage, join(kernelsDir, kver));
    await writeAtomic(join(kernelsDir, 'current'), `${kver}\n`);
    return kver;
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
}

async function ensureKernelDir(kernelsDir: string): Promise<string> {
  await fsp.mkdir(kernelsDir, { recursive: true });
  await sweepStaleTemps(kernelsDir);
  const pinned = process.env['AIONBD_KERNEL_VERSION'];
  let kver: string | undefined = pinned !== undefined && pinned !== '' ? pinned : undefined;
  if (kver === undefined) {
    // Once a kernel is cached it is used as is: tests must not depend on the
    // network or on Debian publishing a new kernel between two runs. Delete
    // the cache directory to move to the newest kernel.
    try {
      kver = (await fsp.readFile(join(kernelsDir, 'current'), 'utf8')).trim() || undefined;
    } catch {
      kver = undefined;
    }
  }
  if (kver !== undefined && (await exists(join(kernelsDir, kver, 'vmlinuz')))) return kver;
  if (pinned !== undefined && pinned !== '') {
    throw new Error(`AIONBD_KERNEL_VERSION=${pinned} is not in ${kernelsDir}`);
  }
  return buildKernelDir(kernelsDir);
}

// ---------------------------------------------------------------------------
// Module dependency resolution

export interface ModuleIndex {
  /** Normalised module name -> path relative to the version directory. */
  paths: Map<string, string>;
  /** Relative path -> relative paths of its dependencies. */
  deps: Map<string, string[]>;
  builtin: Set<string>;
  /** Exact (wildcard-free) aliases -> module names. */
  aliases: Map<string, string[]>;
  softPre: Map<string, string[]>;
  softPost: Map<string, string[]>;
}

/** Module names treat '-' and '_' as the same character. */
export function normaliseModuleName(name: string): string {
  return name.replace(/-/g, '_');
}

function moduleNameOfPath(path: string): string {
  return normaliseModuleName(basename(path).replace(/\.ko(\.(xz|gz|zst))?$/, ''));
}

function pushTo(map: Map<string, string[]>, key: string, value: string): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

async function readModuleIndex(versionDir: string): Promise<ModuleIndex> {
  const idx: ModuleIndex = {
    paths: new Map(),
    deps: new Map(),
    builtin: new Set(),
    aliases: new Map(),
    softPre: new Map(),
    softPost: new Map(),
  };
  const read = async (f: string): Promise<string[]> => {
    try {
      return (await fsp.readFile(join(versionDir, f), 'utf8')).split('\n');
    } catch {
      return [];
    }
  };
  for (const line of await read('modules.dep')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon);
    idx.paths.set(moduleNameOfPath(path), path);
    idx.deps.set(path, line.slice(colon + 1).split(/\s+/).filter((s) => s !== ''));
  }
  for (const line of await read('modules.builtin')) {
    if (line.trim() !== '') idx.builtin.add(moduleNameOfPath(line.trim()));
  }
  for (const line of await read('modules.alias')) {
    const m = /^alias\s+(\S+)\s+(\S+)/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined && !/[*?[]/.test(m[1])) {
      pushTo(idx.aliases, m[1], normaliseModuleName(m[2]));
    }
  }
  for (const line of await read('modules.softdep')) {
    const m = /^softdep\s+(\S+)\s+(.*)$/.exec(line);
    if (m?.[1] === undefined || m[2] === undefined) continue;
    const owner = normaliseModuleName(m[1]);
    let target: Map<string, string[]> | undefined;
    for (const word of m[2].split(/\s+/)) {
      if (word === 'pre:') target = idx.softPre;
      else if (word === 'post:') target = idx.softPost;
      else if (word !== '' && target !== undefined) pushTo(target, owner, word);
    }
  }
  return idx;
}

/**
 * Orders the module files to insmod for `wanted`: each module after its hard
 * dependencies and its soft "pre" dependencies (ext4 wants crc32c, which is an
 * alias), built-in modules left out. Throws if a wanted module is neither a
 * file nor built in.
 */
export function resolveModuleOrder(
  idx: ModuleIndex,
  wanted: readonly string[],
  /** Module paths already ordered (by an earlier call): left out. */
  done: Set<string> = new Set(),
): string[] {
  const order: string[] = [];

  const namesFor = (name: string): string[] => {
    const n = normaliseModuleName(name);
    if (idx.paths.has(n) || idx.builtin.has(n)) return [n];
    return idx.aliases.get(name) ?? idx.aliases.get(n) ?? [];
  };
  const visitPath = (path: string): void => {
    if (done.has(path)) return;
    done.add(path);
    const name = moduleNameOfPath(path);
    for (const s of idx.softPre.get(name) ?? []) visitSoft(s);
    for (const d of idx.deps.get(path) ?? []) visitPath(d);
    order.push(path);
    for (const s of idx.softPost.get(name) ?? []) visitSoft(s);
  };
  const visitName = (name: string): boolean => {
    if (idx.builtin.has(name)) return true;
    const path = idx.paths.get(name);
    if (path === undefined) return false;
    visitPath(path);
    return true;
  };
  // A soft dependency that does not exist is not an error (that is what soft means).
  const visitSoft = (name: string): void => {
    for (const n of namesFor(name)) visitName(n);
  };

  for (const w of wanted) {
    const names = namesFor(w);
    if (names.length === 0 || !names.every((n) => visitName(n))) {
      throw new Error(`kernel module ${w} is neither a module file nor built in`);
    }
  }
  return order;
}

// ---------------------------------------------------------------------------
// Initramfs

export interface CpioEntry {
  name: string;
  mode: number;
  data?: Buffer;
  rdevMajor?: number;
  rdevMinor?: number;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

/**
 * Writes a "newc" cpio archive, the format the kernel unpacks as initramfs.
 * Done here rather than with cpio(1) so that device nodes (/dev/console) need
 * no root, and the archive is byte-for-byte reproducible.
 */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  const pad = (): void => {
    const n = (4 - (offset % 4)) % 4;
    if (n > 0) {
      parts.push(Buffer.alloc(n));
      offset += n;
    }
  };
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  let ino = 1;
  const all: CpioEntry[] = [...entries, { name: 'TRAILER!!!', mode: 0 }];
  for (const e of all) {
    const data = e.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${e.name}\0`, 'utf8');
    const isTrailer = e.name === 'TRAILER!!!';
    const header =
      '070701' +
      hex(isTrailer ? 0 : ino++) +
      hex(e.mode) +
      hex(0) + // uid
      hex(0) + // gid
      hex((e.mode & S_IFDIR) === S_IFDIR && !isTrailer ? 2 : 1) +
      hex(0) + // mtime: fixed for reproducibility
      hex(data.length) +
      hex(0) +
      hex(0) +
      hex(e.rdevMajor ?? 0) +
      hex(e.rdevMinor ?? 0) +
      hex(name.length) +
      hex(0);
    parts.push(Buffer.from(header, 'ascii'), name);
    offset += header.length + name.length;
    pad();
    if (data.length > 0) {
      parts.push(data);
      offset += data.length;
      pad();
    }
  }
  return Buffer.concat(parts);
}

/** True if the ELF file has no PT_INTERP header, i.e. it runs without a dynamic loader. */
export function isStaticElf(buf: Buffer): boolean {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2) {
    throw new Error('not a 64-bit ELF file');
  }
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > buf.length) break;
    if (buf.readUInt32LE(off) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

async function findStaticBusybox(): Promise<string> {
  const candidates = [process.env['AIONBD_BUSYBOX'], '/bin/busybox', '/usr/bin/busybox'];
  for (const c of candidates) {
    if (c === undefined || c === '') continue;
    let head: Buffer;
    try {
      head = await fsp.readFile(c);
    } catch {
      continue;
    }
    if (isStaticElf(head)) return c;
  }
  throw new Error('no statically linked busybox found: install the Debian package busybox-static');
}

async function readModuleFile(path: string): Promise<Buffer> {
  // busybox insmod cannot read compressed modules; Debian 12 ships them
  // plain, later releases compress them.
  if (path.endsWith('.ko')) return fsp.readFile(path);
  if (path.endsWith('.ko.gz')) return gunzipSync(await fsp.readFile(path));
  if (path.endsWith('.ko.xz')) return runOk('xz', ['-dc', path]);
  if (path.endsWith('.ko.zst')) return runOk('zstd', ['-dcq', path]);
  throw new Error(`unknown module file type: ${path}`);
}

async function buildInitrd(initrdDir: string, kver: string, versionDir: string): Promise<string> {
  const busyboxPath = await findStaticBusybox();
  const busybox = await fsp.readFile(busyboxPath);
  const idx = await readModuleIndex(versionDir);
  const done = new Set<string>();
  const bootOrder = resolveModuleOrder(idx, BOOT_MODULES, done);
  const extraOrder = resolveModuleOrder(idx, EXTRA_MODULES, done);

  const recipe = createHash('sha256');
  recipe.update(`${RECIPE_VERSION}\0${kver}\0${STAGE1_INIT}\0${STAGE2_LOOP}\0`);
  recipe.update(`${bootOrder.join(',')}\0${extraOrder.join(',')}\0`);
  recipe.update(createHash('sha256').update(busybox).digest());
  const out = join(initrdDir, `${kver}-${recipe.digest('hex').slice(0, 16)}.img`);
  if (await exists(out)) return out;

  const entries: CpioEntry[] = [];
  for (const d of ['bin', 'dev', 'etc', 'lib', 'lib/modules', 'proc', 'sys']) {
    entries.push({ name: d, mode: S_IFDIR | 0o755 });
  }
  // Without it the kernel starts /init with no stdin/stdout/stderr: Debian's
  // kernel does not mount devtmpfs by itself.
  entries.push({ name: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 });
  entries.push({ name: 'bin/busybox', mode: S_IFREG | 0o755, data: busybox });
  entries.push({ name: 'init', mode: S_IFREG | 0o755, data: Buffer.from(STAGE1_INIT) });
  entries.push({ name: 'loop.sh', mode: S_IFREG | 0o644, data: Buffer.from(STAGE2_LOOP) });
  for (const [list, order] of [
    ['boot', bootOrder],
    ['extra', extraOrder],
  ] as const) {
    const names: string[] = [];
    for (const rel of order) {
      const file = `${moduleNameOfPath(rel)}.ko`;
      names.push(file);
      const data = await readModuleFile(join(versionDir, rel));
      entries.push({ name: `lib/modules/${file}`, mode: S_IFREG | 0o644, data });
    }
    entries.push({ name: `etc/aionbd-modules-${list}`, mode: S_IFREG | 0o644, data: Buffer.from(`${names.join('\n')}\n`) });
  }

  await fsp.mkdir(initrdDir, { recursive: true });
  await sweepStaleTemps(initrdDir);
  await writeAtomic(out, gzipSync(writeCpio(entries), { level: 6 }));
  return out;
}

// ---------------------------------------------------------------------------
// Uncompressed kernel

const COMPRESSED_KERNEL_MAGICS: readonly { magic: Buffer; cmd: string; args: string[] }[] = [
  { magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), cmd: 'xz', args: ['-dc', '--single-stream'] },
  { magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), cmd: 'zstd', args: ['-dcq'] },
  { magic: Buffer.from([0x1f, 0x8b, 0x08]), cmd: 'gzip', args: ['-dc'] },
];

/**
 * Unpacks the ELF vmlinux from the bzImage, when the kernel has a PVH entry
 * point: QEMU then loads it directly, skipping the BIOS, the real-mode setup
 * and the in-guest xz decompression, which under TCG take three of the
 * eight seconds a boot takes. Returns undefined when that is not possible;
 * the bzImage works, only slower.
 */
async function ensureVmlinux(kdir: string): Promise<string | undefined> {
  const out = join(kdir, 'vmlinux');
  if (await exists(out)) return out;
  let config = '';
  try {
    config = await fsp.readFile(join(kdir, 'config'), 'utf8');
  } catch {
    return undefined;
  }
  if (!/^CONFIG_PVH=y$/m.test(config)) return undefined;
  const image = await fsp.readFile(join(kdir, 'vmlinuz'));
  for (const { magic, cmd, args } of COMPRESSED_KERNEL_MAGICS) {
    const at = image.indexOf(magic);
    if (at < 0) continue;
    // gzip and xz complain about the bytes after the stream; the output is
    // complete all the same, so judge by the ELF header, not the exit code.
    const r = await run(cmd, args, { input: image.subarray(at) }).catch(() => undefined);
    if (r === undefined || r.stdout.length < 1 << 20 || r.stdout.readUInt32BE(0) !== 0x7f454c46) continue;
    await writeAtomic(out, r.stdout);
    return out;
  }
  return undefined;
}

// ---------------------------------------------------------------------------

let pending: Promise<KernelAssets> | undefined;

/**
 * Returns the cached kernel and initramfs, fetching Debian's kernel package
 * with `apt-get download` the first time (one line on stderr says so).
 * Needs apt-get, dpkg-deb, depmod (kmod) and busybox-static.
 */
export function ensureKernelAssets(): Promise<KernelAssets> {
  pending ??= build().catch((e: unknown) => {
    pending = undefined; // let a later call retry (e.g. after apt-get update by hand)
    throw e;
  });
  return pending;
}

async function build(): Promise<KernelAssets> {
  const root = cacheDir();
  const kernelsDir = join(root, 'kernels');
  const kver = await ensureKernelDir(kernelsDir);
  const kdir = join(kernelsDir, kver);
  const modulesDir = join(kdir, 'root', 'lib', 'modules');
  const initrd = await buildInitrd(join(root, 'initrd'), kver, join(modulesDir, kver));
  const vmlinux = process.env['AIONBD_VM_BZIMAGE'] === '1' ? undefined : await ensureVmlinux(kdir);
  return { kernel: vmlinux ?? join(kdir, 'vmlinuz'), initrd, version: kver, modulesDir };
}
