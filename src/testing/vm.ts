// A throwaway Linux VM for kernel tests: Debian's stock kernel under QEMU,
// with the host's root file system (read-only, over 9p) as its root, so that
// the host's own nbd-client, mkfs, fio and node run in the guest against the
// guest's kernel.
//
// Channels between host and guest, and why each is what it is:
//  - commands: a virtio-serial port on a unix socket that this process
//    listens on. No tty sits in the way (no echo, no line discipline, no
//    baud rate), and each command ends with a marker carrying a random nonce
//    and the exit code (see guest-init.ts).
//  - console: the kernel's ttyS0 on QEMU's stdout, kept in a ring buffer for
//    error messages and passed to VmOptions.log.
//  - network: QEMU's user network with restrict=on, so no packet leaves the
//    QEMU process; each forward is a guestfwd whose `cmd:` is socat to a
//    unix socket on the host. No host TCP port is opened.
//  - files: 9p shares (host root read-only; VmOptions.shareDir writable).
//
// What a command sees in the guest: the host's directories read-only (so
// the host's /usr/bin, /etc, the project's tree), fresh tmpfs on /tmp, /run,
// /var/tmp and /mnt (the host's /tmp is NOT visible: pass files through
// shareDir at /share), /dev with the guest's devices, and `modprobe` for
// every module of the Debian kernel.
//
// Environment knobs: AIONBD_CACHE_DIR (kernel cache, see kernel-assets.ts),
// AIONBD_VM_ACCEL=kvm|tcg|auto, AIONBD_VM_CONSOLE=stderr (echo the console),
// AIONBD_KERNEL_VERSION (pick a cached kernel), AIONBD_VM_BZIMAGE=1 (boot the
// compressed image, not the PVH vmlinux).

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, existsSync, openSync, promises as fsp, readFileSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  CMDLINE_MODULES,
  CMDLINE_SHARE,
  COMMAND_PORT_NAME,
  END_MARKER_PREFIX,
  END_MARKER_SUFFIX,
  GUEST_FORWARD_ADDRESS,
  READY_LINE,
  TAG_HOSTLIVE,
  TAG_HOSTROOT,
  TAG_MODULES,
  TAG_SHARE,
} from './guest-init.js';
import { cacheDir, ensureKernelAssets, type KernelAssets } from './kernel-assets.js';

export interface VmForward {
  /** The guest connects to 10.0.2.100:guestPort ... */
  guestPort: number;
  /** ... and reaches this unix socket on the host (connected afresh for each guest connection). */
  hostSocket: string;
}

export type VmAccel = 'kvm' | 'tcg';

export interface VmOptions {
  forwards?: VmForward[];
  /** Host directory, writable, mounted in the guest at /share. */
  shareDir?: string;
  /** Default 1024. */
  memoryMiB?: number;
  /** Default 2. */
  cpus?: number;
  /** Default 120000 (TCG on two cores is slow to boot when the machine is busy). */
  bootTimeoutMs?: number;
  /** Receives each kernel console line (and QEMU's stderr, prefixed "qemu: "). */
  log?: (line: string) => void;
  /**
   * 'auto' (the default, or $AIONBD_VM_ACCEL): KVM if /dev/kvm opens and a
   * kernel boots under it, else TCG. 'kvm' fails rather than fall back.
   */
  accel?: VmAccel | 'auto';
  /** withVm only: print the console tail to stderr when `fn` throws. Default true. */
  consoleOnError?: boolean;
  /**
   * Appended to the kernel command line. The console shows warnings and
   * worse (loglevel=5) unless this says otherwise, e.g. ['loglevel=7'];
   * `dmesg` in the guest always has everything.
   */
  kernelArgs?: string[];
}

export interface ShOptions {
  /** Default 120000. On expiry the promise rejects and the VM is torn down. */
  timeoutMs?: number;
}

export interface ShResult {
  /** Exit code of the command's shell. */
  code: number;
  /** stdout and stderr, interleaved as written. */
  output: string;
}

export interface Vm {
  /** Runs `command` with /bin/sh in the guest, as root, cwd /, stdin /dev/null. */
  sh(command: string, opts?: ShOptions): Promise<ShResult>;
  /** Milliseconds from starting QEMU to the guest taking commands. */
  readonly bootMs: number;
  readonly accel: VmAccel;
  /** QEMU's process id. */
  readonly pid: number;
  /** The guest kernel's release (`uname -r`). */
  readonly kernelVersion: string;
  /** The last `lines` lines of the kernel console. */
  consoleTail(lines?: number): string;
  /** Powers the VM off (kills QEMU); bounded in time, idempotent. */
  close(): Promise<void>;
}

export class VmError extends Error {
  override name = 'VmError';
}

/** A command or the boot ran out of time; `output` holds what the command printed so far. */
export class VmTimeoutError extends VmError {
  override name = 'VmTimeoutError';
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
  }
}

class BootError extends VmError {
  override name = 'BootError';
  constructor(
    message: string,
    /** False if the kernel never printed a line: the accelerator, not the guest, failed. */
    readonly kernelStarted: boolean,
  ) {
    super(message);
  }
}

const DEFAULT_MEMORY_MIB = 1024;
const DEFAULT_CPUS = 2;
const DEFAULT_BOOT_TIMEOUT_MS = 120_000;
const DEFAULT_SH_TIMEOUT_MS = 120_000;
// Under KVM the kernel's first console line comes within a second; a KVM
// that cannot run a guest (nested virtualisation without support) hangs
// silently instead, so this long without a line means: fall back to TCG.
const KVM_PROBE_MS = 15_000;
const TERM_GRACE_MS = 4_000;
const KILL_GRACE_MS = 4_000;
const CONSOLE_KEEP_LINES = 2_000;
const ERROR_TAIL_LINES = 40;

export { GUEST_FORWARD_ADDRESS, GUEST_SHARE_DIR } from './guest-init.js';

// ---------------------------------------------------------------------------
// Accelerator choice

let kvmBrokenHere = false;

function kvmMarkerPath(): string {
  return join(cacheDir(), 'kvm-broken');
}

/** Whether an earlier run on this host kernel found KVM unable to boot a guest. */
function kvmKnownBroken(): boolean {
  if (kvmBrokenHere) return true;
  try {
    return readFileSync(kvmMarkerPath(), 'utf8').split('\n').includes(release());
  } catch {
    return false;
  }
}

async function markKvmBroken(): Promise<void> {
  kvmBrokenHere = true;
  try {
    await fsp.mkdir(cacheDir(), { recursive: true });
    await fsp.appendFile(kvmMarkerPath(), `${release()}\n`);
  } catch {
    // Only a speed-up for the next run.
  }
}

function kvmOpens(): boolean {
  try {
    closeSync(openSync('/dev/kvm', fsConstants.O_RDWR));
    return true;
  } catch {
    return false;
  }
}

function requestedAccel(opts: VmOptions): VmAccel | 'auto' {
  const v = opts.accel ?? process.env['AIONBD_VM_ACCEL'] ?? 'auto';
  if (v === 'kvm' || v === 'tcg' || v === 'auto') return v;
  throw new VmError(`AIONBD_VM_ACCEL must be kvm, tcg or auto, not ${JSON.stringify(v)}`);
}

// ---------------------------------------------------------------------------
// QEMU command line

// socat splits addresses on ':' and ',' and QEMU runs the command through
// /bin/sh: allow only characters that mean nothing to either.
const SAFE_SOCKET_PATH = /^\/[A-Za-z0-9._/@+=-]+$/;

/** QEMU's option parser takes ",," for a literal comma. */
function qemuValue(s: string): string {
  return s.replace(/,/g, ',,');
}

export interface QemuArgsInput {
  assets: KernelAssets;
  accel: VmAccel;
  memoryMiB: number;
  cpus: number;
  commandSocket: string;
  shareDir?: string | undefined;
  forwards: readonly VmForward[];
  kernelArgs?: readonly string[] | undefined;
}

export function qemuArgs(p: QemuArgsInput): string[] {
  // loglevel=5: a full boot log over the emulated UART costs half a second
  // under TCG, and says nothing a failing test needs that dmesg lacks.
  const append = ['console=ttyS0', 'loglevel=5', 'panic=-1', 'rdinit=/init', CMDLINE_MODULES];
  if (p.shareDir !== undefined) append.push(CMDLINE_SHARE);
  append.push(...(p.kernelArgs ?? []));
  const netdev = ['user', 'id=net0', 'restrict=on'];
  for (const f of p.forwards) {
    netdev.push(`guestfwd=tcp:${GUEST_FORWARD_ADDRESS}:${f.guestPort}-cmd:socat STDIO UNIX-CONNECT:${f.hostSocket}`);
  }
  const virtfs = (path: string, tag: string, readonly: boolean): string[] => [
    '-virtfs',
    `local,path=${qemuValue(path)},mount_tag=${tag},security_model=none,multidevs=remap${readonly ? ',readonly=on' : ''}`,
  ];
  const args = [
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    // q35 rather than pc: on pc each virtio device's interrupt goes through
    // an ACPI link device whose AML takes ~150 ms per device to run under TCG.
    '-machine',
    'q35',
    ...(p.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max']),
    '-m',
    String(p.memoryMiB),
    '-smp',
    String(p.cpus),
    '-kernel',
    p.assets.kernel,
    '-initrd',
    p.assets.initrd,
    '-append',
    append.join(' '),
    '-chardev',
    'stdio,id=console,signal=off',
    '-serial',
    'chardev:console',
    '-device',
    'virtio-serial-pci,id=vser0',
    '-chardev',
    `socket,id=cmd,path=${qemuValue(p.commandSocket)}`,
    '-device',
    `virtserialport,bus=vser0.0,chardev=cmd,name=${COMMAND_PORT_NAME}`,
    ...virtfs('/', TAG_HOSTROOT, true),
    ...virtfs('/', TAG_HOSTLIVE, true),
    ...virtfs(p.assets.modulesDir, TAG_MODULES, true),
    ...(p.shareDir !== undefined ? virtfs(p.shareDir, TAG_SHARE, false) : []),
    '-netdev',
    netdev.join(','),
    '-device',
    'virtio-net-pci,netdev=net0',
  ];
  return args;
}

function validate(opts: VmOptions): { forwards: VmForward[]; shareDir: string | undefined } {
  const forwards = opts.forwards ?? [];
  const ports = new Set<number>();
  for (const f of forwards) {
    if (!Number.isInteger(f.guestPort) || f.guestPort < 1 || f.guestPort > 65535) {
      throw new VmError(`forward guestPort must be 1..65535, not ${f.guestPort}`);
    }
    if (ports.has(f.guestPort)) throw new VmError(`guestPort ${f.guestPort} is forwarded twice`);
    ports.add(f.guestPort);
    if (!SAFE_SOCKET_PATH.test(f.hostSocket)) {
      throw new VmError(`forward hostSocket must be an absolute path of [A-Za-z0-9._/@+=-]: ${f.hostSocket}`);
    }
  }
  const shareDir = opts.shareDir;
  if (shareDir !== undefined) {
    let isDir = false;
    try {
      isDir = statSync(shareDir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) throw new VmError(`shareDir is not a directory: ${shareDir}`);
  }
  for (const [name, v] of [
    ['memoryMiB', opts.memoryMiB],
    ['cpus', opts.cpus],
  ] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new VmError(`${name} must be a positive integer`);
  }
  return { forwards, shareDir };
}

// ---------------------------------------------------------------------------
// Process bookkeeping

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

class LineSplitter {
  private partial = '';
  constructor(private readonly emit: (line: string) => void) {}
  push(chunk: string): void {
    const text = this.partial + chunk;
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const l of lines) this.emit(l.replace(/\r$/, ''));
  }
  flush(): void {
    if (this.partial !== '') this.emit(this.partial.replace(/\r$/, ''));
    this.partial = '';
  }
}

// ---------------------------------------------------------------------------
// The VM

class QemuVm implements Vm {
  bootMs = 0;
  private child: ChildProcess | undefined;
  private server: Server | undefined;
  private sock: Socket | undefined;
  private rx: Buffer = Buffer.alloc(0);
  private readonly consoleLines: string[] = [];
  private kernelStarted = false;
  private exitInfo: string | undefined;
  private channelClosed = false;
  private closing = false;
  private broken: string | undefined;
  private notify: (() => void) | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closePromise: Promise<void> | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly logFn: ((line: string) => void) | undefined;

  constructor(
    readonly accel: VmAccel,
    readonly kernelVersion: string,
    private readonly dir: string,
    opts: VmOptions,
  ) {
    const envLog = process.env['AIONBD_VM_CONSOLE'] === 'stderr' ? (l: string) => process.stderr.write(`${l}\n`) : undefined;
    this.logFn = opts.log ?? envLog;
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  consoleTail(lines = ERROR_TAIL_LINES): string {
    return this.consoleLines.slice(-lines).join('\n');
  }

  private consoleLine(line: string): void {
    this.consoleLines.push(line);
    if (this.consoleLines.length > CONSOLE_KEEP_LINES) this.consoleLines.splice(0, this.consoleLines.length - CONSOLE_KEEP_LINES);
    // A kernel line (timestamped) or the init's first word: the guest runs.
    if (!this.kernelStarted && /^\[\s*\d+\.\d+\]|^aionbd/.test(line)) {
      this.kernelStarted = true;
      this.notify?.();
    }
    try {
      this.logFn?.(line);
    } catch {
      // A throwing logger must not take the VM down.
    }
  }

  private errorTail(): string {
    return `\n--- guest console, last ${ERROR_TAIL_LINES} lines ---\n${this.consoleTail()}`;
  }

  async start(args: QemuArgsInput, opts: { bootTimeoutMs: number; probeMs: number | undefined }): Promise<void> {
    const server = createServer((s) => this.onConnection(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(args.commandSocket, () => {
        server.off('error', reject);
        resolve();
      });
    });

    const qemu = ['qemu-system-x86_64', ...qemuArgs(args)];
    // setpriv's parent-death signal: QEMU must not outlive a test process
    // that crashed or was killed by its runner.
    const argv = SETPRIV !== undefined ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...qemu] : qemu;
    const started = Date.now();
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    live.add(child);
    installExitHook();
    const out = new LineSplitter((l) => this.consoleLine(l));
    const err = new LineSplitter((l) => this.consoleLine(`qemu: ${l}`));
    child.stdout?.setEncoding('utf8').on('data', (s: string) => out.push(s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => err.push(s));
    // QEMU reads the console's input from stdin: keep it open and empty.
    child.stdin?.on('error', () => undefined);
    this.exited = new Promise<void>((resolve) => {
      const done = (info: string): void => {
        if (this.exitInfo !== undefined) return;
        out.flush();
        err.flush();
        this.exitInfo = info;
        live.delete(child);
        this.notify?.();
        resolve();
      };
      child.on('error', (e) => done(`cannot start QEMU: ${e.message}`));
      child.on('exit', (code, signal) => done(signal !== null ? `killed by ${signal}` : `exit code ${code ?? '?'}`));
    });

    let probeFailed = false;
    const probe =
      opts.probeMs !== undefined
        ? setTimeout(() => {
            probeFailed = !this.kernelStarted;
            this.notify?.();
          }, opts.probeMs)
        : undefined;
    try {
      await this.waitFor(
        () => {
          if (probeFailed) {
            throw new BootError(`the guest printed nothing within ${opts.probeMs} ms under ${this.accel}`, false);
          }
          const ready = Buffer.from(`${READY_LINE}\n`);
          const i = this.rx.indexOf(ready);
          if (i < 0) return undefined;
          this.rx = this.rx.subarray(i + ready.length);
          return true;
        },
        opts.bootTimeoutMs,
        'boot',
      );
    } catch (e) {
      await this.close();
      if (e instanceof BootError) throw e;
      throw new BootError((e as Error).message, this.kernelStarted);
    } finally {
      clearTimeout(probe);
    }
    this.bootMs = Date.now() - started;
  }

  private onConnection(s: Socket): void {
    if (this.sock !== undefined || this.closing) {
      s.destroy();
      return;
    }
    this.sock = s;
    s.on('data', (b: Buffer) => {
      this.rx = this.rx.length === 0 ? b : Buffer.concat([this.rx, b]);
      this.notify?.();
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      // The channel closes when QEMU dies; give the exit a moment to arrive
      // so that the error names the cause (QEMU's exit status) rather than
      // the symptom.
      void Promise.race([this.exited, new Promise((r) => setTimeout(r, 1_000).unref())]).then(() => {
        this.channelClosed = true;
        this.notify?.();
      });
    });
  }

  /** Resolves with check()'s first defined value; re-checks on every event. */
  private waitFor<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const finish = (f: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.notify = undefined;
        f();
      };
      const poll = (): void => {
        let v: T | undefined;
        try {
          v = check();
        } catch (e) {
          finish(() => reject(e));
          return;
        }
        if (v !== undefined) {
          finish(() => resolve(v));
        } else if (this.exitInfo !== undefined) {
          finish(() => reject(new VmError(`${what}: QEMU ended (${this.exitInfo})${this.errorTail()}`)));
        } else if (this.channelClosed) {
          finish(() => reject(new VmError(`${what}: the command channel closed${this.errorTail()}`)));
        } else if (this.closing) {
          finish(() => reject(new VmError(`${what}: the VM was closed`)));
        }
      };
      const timer = setTimeout(() => {
        finish(() =>
          reject(
            new VmTimeoutError(
              `${what}: timed out after ${timeoutMs} ms${this.errorTail()}`,
              this.rx.toString('utf8'),
            ),
          ),
        );
      }, timeoutMs);
      this.notify = poll;
      poll();
    });
  }

  sh(command: string, opts: ShOptions = {}): Promise<ShResult> {
    const result = this.queue.then(() => this.runCommand(command, opts.timeoutMs ?? DEFAULT_SH_TIMEOUT_MS));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async runCommand(command: string, timeoutMs: number): Promise<ShResult> {
    if (this.closing) throw new VmError('sh: the VM is closed');
    if (this.broken !== undefined) throw new VmError(`sh: the VM is broken (${this.broken})`);
    const sock = this.sock;
    if (sock === undefined) throw new VmError('sh: no command channel');
    const nonce = randomBytes(8).toString('hex');
    const prefix = Buffer.from(`${END_MARKER_PREFIX}${nonce} `);
    const suffix = Buffer.from(END_MARKER_SUFFIX);
    // Anything left over was written by background processes of earlier
    // commands; it belongs to none of them.
    this.rx = Buffer.alloc(0);
    sock.write(`${nonce} ${Buffer.from(command, 'utf8').toString('base64')}\n`);
    const label = `sh ${JSON.stringify(command.length > 80 ? `${command.slice(0, 77)}...` : command)}`;
    try {
      return await this.waitFor(
        () => {
          const i = this.rx.indexOf(prefix);
          if (i < 0) return undefined;
          const end = this.rx.indexOf(suffix, i + prefix.length);
          if (end < 0) return undefined;
          const code = Number.parseInt(this.rx.subarray(i + prefix.length, end).toString('ascii'), 10);
          const output = this.rx.subarray(0, i).toString('utf8');
          this.rx = this.rx.subarray(end + suffix.length);
          return { code, output };
        },
        timeoutMs,
        label,
      );
    } catch (e) {
      // The guest is still running the command and the channel is out of
      // step: nothing more can be asked of this VM.
      this.broken = (e as Error).message.split('\n')[0];
      void this.close();
      throw e;
    }
  }

  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    this.notify?.();
    const child = this.child;
    if (child !== undefined && this.exitInfo === undefined) {
      // No guest-side shutdown first: the guest's state is all tmpfs or
      // already written through (9p is uncached, NBD goes to its server), so
      // there is nothing to flush and killing is the bounded way.
      const waitExit = (ms: number): Promise<boolean> =>
        Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
      child.kill('SIGTERM');
      if (!(await waitExit(TERM_GRACE_MS))) {
        child.kill('SIGKILL');
        await waitExit(KILL_GRACE_MS);
      }
    }
    this.sock?.destroy();
    await new Promise<void>((r) => {
      if (this.server === undefined) r();
      else this.server.close(() => r());
    });
    await fsp.rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function bootWith(
  assets: KernelAssets,
  opts: VmOptions,
  accel: VmAccel,
  probeMs: number | undefined,
): Promise<QemuVm> {
  const { forwards, shareDir } = validate(opts);
  const dir = await fsp.mkdtemp(join(tmpdir(), 'aionbd-vm-'));
  const vm = new QemuVm(accel, assets.version, dir, opts);
  try {
    await vm.start(
      {
        assets,
        accel,
        memoryMiB: opts.memoryMiB ?? DEFAULT_MEMORY_MIB,
        cpus: opts.cpus ?? DEFAULT_CPUS,
        commandSocket: join(dir, 'cmd.sock'),
        shareDir,
        forwards,
        kernelArgs: opts.kernelArgs,
      },
      { bootTimeoutMs: opts.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS, probeMs },
    );
  } catch (e) {
    await vm.close();
    throw e;
  }
  return vm;
}

/** Boots a VM; the caller must close() it (or use withVm). */
export async function bootVm(opts: VmOptions = {}): Promise<Vm> {
  validate(opts);
  const assets = await ensureKernelAssets();
  const want = requestedAccel(opts);
  if (want === 'kvm') return bootWith(assets, opts, 'kvm', undefined);
  if (want === 'auto' && !kvmKnownBroken() && kvmOpens()) {
    try {
      return await bootWith(assets, opts, 'kvm', KVM_PROBE_MS);
    } catch (e) {
      if (!(e instanceof BootError) || e.kernelStarted) throw e;
      // /dev/kvm opens but cannot run this guest (seen under nested
      // virtualisation: QEMU aborts setting an MSR, or the vCPU spins).
      await markKvmBroken();
      opts.log?.(`aionbd: KVM cannot boot the guest (${e.message.split('\n')[0]}); using TCG`);
    }
  }
  return bootWith(assets, opts, 'tcg', undefined);
}

/** Boots a VM, runs `fn`, and always closes the VM, also when `fn` throws or a command times out. */
export async function withVm<T>(opts: VmOptions, fn: (vm: Vm) => Promise<T>): Promise<T> {
  const vm = await bootVm(opts);
  try {
    return await fn(vm);
  } catch (e) {
    if (opts.consoleOnError !== false) {
      process.stderr.write(`--- guest console, last ${ERROR_TAIL_LINES} lines ---\n${vm.consoleTail()}\n---\n`);
    }
    throw e;
  } finally {
    await vm.close();
  }
}

export { ensureKernelAssets };
export type { KernelAssets };
