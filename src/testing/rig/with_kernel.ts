// withKernel: a real Linux kernel under aionbd exports, for test authors. Where this machine's
// kernel can do it (root, /dev/nbd0), the exports are attached here with aionbd's own netlink
// attach; elsewhere a VM (vm.ts) boots Debian's kernel, the exports reach it through QEMU's
// restricted user network, and nbd-client attaches them inside. Either way the callback gets
// the same object: sh() runs a shell command against that kernel, `devices` says which
// /dev/nbdN each export became, and everything is torn down afterwards, also on failure or
// timeout.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { logger, type Logger } from '../../log.js';
import { Server } from '../../server.js';
import { parseSize } from '../../util/size.js';
import { KernelCommandError, VmError, VmTimeoutError } from './errors.js';
import { GUEST_FORWARD_ADDRESS } from './guest_init.js';
import type { ShOptions, ShResult, Vm, VmOptions } from './types.js';
import { bootVm } from './vm.js';

/** An AIO bdev withKernel creates and exports under `name`. */
export interface KernelExport {
  name: string;
  /** The backing file, created sparse with `size` when missing. Default: a file in a temporary directory. */
  file?: string;
  /** Bytes, or a size with a binary suffix ('64M', '1G'). Needed when the file does not exist yet. */
  size?: number | string;
  blockSize?: number;
  readonly?: boolean;
}

export interface AttachSettings {
  /** Socket connections (nbd-client -C). Default 1. */
  connections?: number;
  /** Seconds before the kernel fails a request with EIO (0: never). Default 30. */
  timeout?: number;
  /** Logical block size of the device. Default: the bdev's, within 512..4096. */
  blockSize?: number;
}

export interface KernelOptions extends AttachSettings {
  /** Attach the exports of this embedded server; it stays yours (withKernel does not close it). */
  server?: Server;
  /** Or: AIO bdevs to create, each exported under its name, in a server withKernel owns. */
  exports?: KernelExport[];
  /** Exports to attach at start, in this order (VM: /dev/nbd0, /dev/nbd1, ...). Default: all. */
  attach?: string[];
  /** 'auto' (default, or $AIONBD_KERNEL): this machine's kernel when root and /dev/nbd0 exist, else a VM. */
  where?: 'auto' | 'host' | 'vm';
  /** For the VM (memory, cpus, shareDir, log, ...); forwards are set by withKernel. */
  vm?: Omit<VmOptions, 'forwards'>;
  /** Bound for withKernel as a whole, boot and teardown included. Default 600000. */
  timeoutMs?: number;
  /** Logger of the server withKernel creates. Default: aionbd's, warnings and worse. */
  log?: Logger;
}

export interface Kernel {
  readonly where: 'host' | 'vm';
  /** The device each attached export became, by export name: { d0: '/dev/nbd0' }. */
  readonly devices: Readonly<Record<string, string>>;
  readonly server: Server;
  /** The VM, when there is one. */
  readonly vm: Vm | null;
  /** Runs `command` with /bin/sh as root where the devices are; output is stdout and stderr interleaved. */
  sh(command: string, opts?: ShOptions): Promise<ShResult>;
  /** As sh(), but resolves with the output only on exit code 0, else rejects with it. */
  run(command: string, opts?: ShOptions): Promise<string>;
  /** Attaches one more export; resolves with its device. */
  attach(exportName: string, settings?: AttachSettings): Promise<string>;
  /** Detaches a device attached by attach() or at start. */
  detach(device: string): Promise<void>;
  /** Detaches everything, stops the VM, closes what withKernel created. Bounded, idempotent. */
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 600_000;
const TEARDOWN_STEP_MS = 30_000;
const GUEST_PORT = 10809;

function chooseWhere(w: KernelOptions['where']): 'host' | 'vm' {
  const v = w ?? process.env['AIONBD_KERNEL'] ?? 'auto';
  if (v === 'host' || v === 'vm') return v;
  if (v !== 'auto') throw new VmError(`AIONBD_KERNEL must be host, vm or auto, not ${JSON.stringify(v)}`);
  return process.getuid?.() === 0 && fs.existsSync('/dev/nbd0') ? 'host' : 'vm';
}

/** /bin/sh on this machine, bounded like Vm.sh: the process group is killed on timeout. */
function hostSh(command: string, opts: ShOptions = {}): Promise<ShResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const p = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    p.stdout.setEncoding('utf8').on('data', (s: string) => {
      output += s;
    });
    p.stderr.setEncoding('utf8').on('data', (s: string) => {
      output += s;
    });
    const timer = setTimeout(() => {
      // The whole group: the command's children too. It may have exited a moment ago.
      if (p.pid !== undefined && p.exitCode === null && p.signalCode === null) process.kill(-p.pid, 'SIGKILL');
      reject(new VmTimeoutError(`sh ${JSON.stringify(command)}: timed out after ${timeoutMs} ms`, output));
    }, timeoutMs);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal !== null ? 128 : 1), output });
    });
  });
}

// Teardown steps are best effort and bounded: one that fails or hangs must not keep the rest
// (killing QEMU, removing files) from running, and the caller's own error is the one to report.
async function settle(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => undefined),
    new Promise<void>((r) => {
      timer = setTimeout(r, ms);
    }),
  ]);
  clearTimeout(timer);
}

class KernelRig implements Kernel {
  readonly devices: Record<string, string> = {};
  vm: Vm | null = null;
  readonly #dir: string;
  readonly #ownServer: boolean;
  readonly #defaults: AttachSettings;
  readonly #attached = new Map<string, string>(); // device -> export
  #listener: net.Server | null = null;
  readonly #accepted = new Set<net.Socket>();
  #closing: Promise<void> | null = null;

  constructor(
    readonly where: 'host' | 'vm',
    readonly server: Server,
    ownServer: boolean,
    dir: string,
    defaults: AttachSettings,
  ) {
    this.#ownServer = ownServer;
    this.#dir = dir;
    this.#defaults = defaults;
  }

  async bootGuest(vmOpts: Omit<VmOptions, 'forwards'>): Promise<void> {
    const sock = path.join(this.#dir, 'nbd.sock');
    // Our own listener, not the server's: it goes away with the rig, and the server does not.
    const l = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => {
      this.#accepted.add(s);
      s.once('close', () => this.#accepted.delete(s));
      void this.server.nbd.accept(s);
    });
    this.#listener = l;
    await new Promise<void>((resolve, reject) => {
      l.once('error', reject);
      l.listen(sock, () => resolve());
    });
    this.vm = await bootVm({ ...vmOpts, forwards: [{ guestPort: GUEST_PORT, hostSocket: sock }] });
  }

  sh(command: string, opts?: ShOptions): Promise<ShResult> {
    return this.vm !== null ? this.vm.sh(command, opts) : hostSh(command, opts);
  }

  async run(command: string, opts?: ShOptions): Promise<string> {
    const r = await this.sh(command, opts);
    if (r.code === 0) return r.output;
    const tail = this.vm !== null ? `\n--- guest console ---\n${this.vm.consoleTail(20)}` : '';
    throw new KernelCommandError(command, r.code, r.output, tail);
  }

  async attach(exportName: string, settings: AttachSettings = {}): Promise<string> {
    const s = { ...this.#defaults, ...settings };
    const timeout = s.timeout ?? 30;
    let device: string;
    if (this.vm === null) {
      device = (await this.server.startDisk(exportName, { connections: s.connections, timeout, blockSize: s.blockSize })).device;
    } else {
      const x = this.server.nbd.getExport(exportName);
      if (x === undefined) throw new VmError(`no export named "${exportName}"`);
      let i = 0;
      while (this.#attached.has(`/dev/nbd${i}`)) i++;
      device = `/dev/nbd${i}`;
      const bs = s.blockSize ?? Math.min(4096, Math.max(512, x.bdev.blockSize));
      const conns = (s.connections ?? 1) > 1 ? ` -C ${s.connections}` : '';
      await this.run(
        `nbd-client ${GUEST_FORWARD_ADDRESS} ${GUEST_PORT} ${device} -N ${exportName} -b ${bs}${conns}${timeout > 0 ? ` -t ${timeout}` : ''}`,
      );
    }
    this.#attached.set(device, exportName);
    this.devices[exportName] = device;
    return device;
  }

  async detach(device: string): Promise<void> {
    const name = this.#attached.get(device);
    if (name === undefined) throw new VmError(`${device} was not attached by this rig`);
    if (this.vm === null) await this.server.stopDisk(device);
    else await this.run(`nbd-client -d ${device}`);
    this.#attached.delete(device);
    if (this.devices[name] === device) delete this.devices[name];
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // Here: detach, so this kernel keeps no device of a server about to close. In a VM: power
    // it off (a guest command could be stuck behind a hung one; the guest's devices die with it).
    if (this.vm === null) for (const device of [...this.#attached.keys()]) await settle(this.detach(device), TEARDOWN_STEP_MS);
    else await this.vm.close();
    for (const s of this.#accepted) s.destroy();
    const l = this.#listener;
    if (l !== null)
      await new Promise<void>((r) => {
        l.close(() => r());
      });
    if (this.#ownServer) await settle(this.server.close(), TEARDOWN_STEP_MS);
    fs.rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** Starts the rig; the caller must close() it (or use withKernel). */
export async function startKernel(opts: KernelOptions = {}): Promise<Kernel> {
  if ((opts.server === undefined) === (opts.exports === undefined)) throw new VmError('give either server or exports');
  const where = chooseWhere(opts.where);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aionbd-kernel-'));
  const server = opts.server ?? new Server({ log: opts.log ?? logger().child({}, { level: 'warn' }) });
  const rig = new KernelRig(where, server, opts.server === undefined, dir, {
    connections: opts.connections,
    timeout: opts.timeout,
    blockSize: opts.blockSize,
  });
  try {
    for (const e of opts.exports ?? []) {
      const size = typeof e.size === 'string' ? parseSize(e.size, 'size') : e.size;
      await server.createAio({
        filename: e.file ?? path.join(dir, `${e.name}.img`),
        name: e.name,
        size,
        blockSize: e.blockSize,
        readonly: e.readonly,
      });
      server.addExport(e.name, { readonly: e.readonly });
    }
    if (where === 'vm') await rig.bootGuest(opts.vm ?? {});
    const names = opts.attach ?? [...server.nbd.exports()].map((x) => x.name);
    for (const n of names) await rig.attach(n);
  } catch (err) {
    await rig.close();
    throw err;
  }
  return rig;
}

/** Runs fn against a kernel with the exports attached, and always tears everything down. */
export async function withKernel<T>(opts: KernelOptions, fn: (k: Kernel) => Promise<T>): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new VmTimeoutError(`withKernel: timed out after ${timeoutMs} ms`, '')), timeoutMs);
  });
  const started = startKernel(opts);
  try {
    const rig = await Promise.race([started, expired]);
    return await Promise.race([fn(rig), expired]);
  } finally {
    clearTimeout(timer);
    // A start that lost the race is closed once it is done (startKernel closes a failed one).
    await settle(
      started.then((rig) => rig.close()),
      Math.max(TEARDOWN_STEP_MS, deadline - Date.now() + TEARDOWN_STEP_MS),
    );
  }
}
