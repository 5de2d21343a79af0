// A throwaway Linux VM for kernel tests: Debian's stock kernel under QEMU,
// with the host's root file system (read-only, over 9p) as its root, so that
// the host's own nbd-client, mkfs, fio and node run in the guest against the
// guest's kernel.
//
// Channels between host and guest, and why each is what it is:
//  - commands: a virtio-serial port on a unix socket that this process
//    listens on. No tty sits in the way (no echo, no line discipline, no
//    baud rate), and each command ends with a marker carrying a random nonce
//    and the exit code (see guest_init.ts).
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

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';

import { ERROR_TAIL_LINES, GuestConsole, LineSplitter } from './console.js';
import { BootError, VmError, VmTimeoutError } from './errors.js';
import { END_MARKER_PREFIX, END_MARKER_SUFFIX, READY_LINE } from './guest_init.js';
import { qemuArgs, type QemuArgsInput } from './qemu_args.js';
import { orphanProofArgv, track, untrack } from './qemu_process.js';
import type { ShOptions, ShResult, Vm, VmAccel, VmOptions } from './types.js';

const DEFAULT_SH_TIMEOUT_MS = 120_000;
const TERM_GRACE_MS = 4_000;
const KILL_GRACE_MS = 4_000;

export class QemuVm implements Vm {
  bootMs = 0;
  private child: ChildProcess | undefined;
  private server: Server | undefined;
  private sock: Socket | undefined;
  private rx: Buffer = Buffer.alloc(0);
  private exitInfo: string | undefined;
  private channelClosed = false;
  private closing = false;
  private broken: string | undefined;
  private notify: (() => void) | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closePromise: Promise<void> | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly guestConsole: GuestConsole;

  constructor(
    readonly accel: VmAccel,
    readonly kernelVersion: string,
    private readonly dir: string,
    opts: VmOptions,
  ) {
    const envLog = process.env['AIONBD_VM_CONSOLE'] === 'stderr' ? (l: string) => process.stderr.write(`${l}\n`) : undefined;
    this.guestConsole = new GuestConsole(opts.log ?? envLog, () => this.notify?.());
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  consoleTail(lines = ERROR_TAIL_LINES): string {
    return this.guestConsole.tail(lines);
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
    const argv = orphanProofArgv(qemu);
    const started = Date.now();
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    track(child);
    const out = new LineSplitter((l) => this.guestConsole.push(l));
    const err = new LineSplitter((l) => this.guestConsole.push(`qemu: ${l}`));
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
        untrack(child);
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
            probeFailed = !this.guestConsole.kernelStarted;
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
      throw new BootError((e as Error).message, this.guestConsole.kernelStarted);
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
        finish(() => reject(new VmTimeoutError(`${what}: timed out after ${timeoutMs} ms${this.errorTail()}`, this.rx.toString('utf8'))));
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
