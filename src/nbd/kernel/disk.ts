// One export attached to the kernel as /dev/nbdN without nbd-client: socketpairs whose one end
// the kernel gets (netlink NBD_CMD_CONNECT, or the ioctls on a thread of their own) and whose
// other end our NbdServer serves directly in transmission phase: no greeting and no options, since
// size, block size and flags reach the kernel through netlink or the ioctls instead.
//
// Lifecycle, and why each step is there:
// - stop() (detach, bdev hot-remove, server shutdown): DISCONNECT. The kernel sends NBD_CMD_DISC
//   on every socket and fails what is in flight with EIO, so the device's users see errors at
//   once instead of waiting; our connections then end and the device is free again.
// - Every connection ended without stop() (someone else detached it, or the kernel gave up on a
//   connection after a request timeout): DISCONNECT as well, but only while the device still
//   carries our backend identifier, so a device someone attached since is never touched. A
//   netlink device with dead sockets would otherwise keep failing I/O until someone cleaned up.
// - A resize of the bdev (rescan, lvol resize) reaches the device: NBD_CMD_RECONFIGURE with the
//   new size (netlink) or NBD_SET_SIZE (ioctl), and the device's connections accept the new range
//   (growing: before the kernel is told, so its first I/O there is served; shrinking: after).
// - A connection the kernel declared dead (LINK_DEAD) is replaced with a fresh socketpair by
//   NBD_CMD_RECONFIGURE when a dead-connection timeout was given (I/O waits that long for it);
//   after RECONNECT_LIMIT reconnects within a minute the device is disconnected instead, since
//   a request that keeps timing out would otherwise be retried for ever.
import fs from 'node:fs';
import net from 'node:net';
import { constants } from 'node:os';
import { NoFreeNbdDeviceError, UsageError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { native } from '../../native.js';
import type { Export } from '../export.js';
import type { NbdServer } from '../server.js';
import { freeNbdDevices, nbdBackend, nbdDevicePath, parseNbdDevice } from './devices.js';
import { onLinkDead } from './events.js';
import { errnoOf, kernelError, kernelInterface, type NetlinkFamily } from './link.js';

export interface KernelDiskOptions {
  /** /dev/nbdN; default: a free one (netlink: the kernel picks, or makes a new one). */
  device?: string | undefined;
  /** Socket connections, each a hardware queue of the device. Default 1. */
  connections?: number | undefined;
  /** Seconds before the kernel gives up on a request (then EIO). Default 30; 0: never. */
  timeout?: number | undefined;
  /**
   * Seconds I/O waits for a replaced connection after one died. Default 0: it fails at once.
   * Above 0, aionbd replaces dead connections (netlink only).
   */
  deadConnTimeout?: number | undefined;
  /** Logical block size of the device, 512..4096, a power of two. Default: the bdev's, within that range. */
  blockSize?: number | undefined;
  /** false: the ioctl interface even where netlink exists (as nbd-client -L). Default true. */
  netlink?: boolean | undefined;
}

export const DEFAULT_TIMEOUT_S = 30;
export const MAX_CONNECTIONS = 16;
const { EBUSY } = constants.errno;
/** How long stop() waits for the kernel and the connections before dropping our ends. */
const STOP_GRACE_MS = 10_000;
/** After every connection ended, how long a reconnecting device waits for LINK_DEAD. */
const LINK_DEAD_GRACE_MS = 1_000;
const RECONNECT_LIMIT = 5;

interface Settings {
  connections: number;
  timeout: number;
  deadConnTimeout: number;
  blockSize: number;
  netlink: boolean;
}

interface Conn {
  sock: net.Socket;
  done: Promise<void>;
  ended: boolean;
}

let attachSeq = 0;

function whole(v: number | undefined, name: string, min: number, max: number, dflt: number): number {
  const n = v ?? dflt;
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be a whole number from ${min} to ${max}, not ${n}`);
  return n;
}

function settings(o: KernelDiskOptions, x: Export): Settings {
  // The kernel takes 512..PAGE_SIZE, a power of two; other bdev block sizes are bridged by the
  // server's unaligned-I/O adapter.
  const dfltBlock = Math.min(4096, Math.max(512, 2 ** Math.floor(Math.log2(Math.max(1, x.bdev.blockSize)))));
  const blockSize = whole(o.blockSize, 'block size', 512, 4096, dfltBlock);
  if ((blockSize & (blockSize - 1)) !== 0) throw new UsageError(`block size ${blockSize} is not a power of two`);
  return {
    connections: whole(o.connections, 'connections', 1, MAX_CONNECTIONS, 1),
    timeout: whole(o.timeout, 'timeout', 0, 86_400, DEFAULT_TIMEOUT_S),
    deadConnTimeout: whole(o.deadConnTimeout, 'dead-connection timeout', 0, 86_400, 0),
    blockSize,
    netlink: o.netlink ?? true,
  };
}

function closeFds(fds: number[]): void {
  for (const fd of fds) fs.closeSync(fd);
}

/** n socketpairs: the kernel's ends, and ours already served by `server`. */
function openConns(server: NbdServer, x: Export, n: number): { kernelFds: number[]; conns: Conn[] } {
  const kernelFds: number[] = [];
  const conns: Conn[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const [ours, theirs] = native().nbd.socketpair();
      kernelFds.push(theirs);
      const sock = new net.Socket({ fd: ours, readable: true, writable: true });
      const c: Conn = { sock, ended: false, done: Promise.resolve() };
      conns.push(c);
      c.done = server.serveDirect(sock, x).then(() => {
        c.ended = true;
      });
    }
  } catch (err) {
    closeFds(kernelFds);
    for (const c of conns) c.sock.destroy();
    throw err;
  }
  return { kernelFds, conns };
}

function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  return Promise.race([p.then(() => true), t]).finally(() => clearTimeout(timer));
}

/** Attaches `x` to the kernel; resolves once the kernel has the device. */
export async function attachDisk(server: NbdServer, x: Export, opts: KernelDiskOptions, log: Logger): Promise<KernelDisk> {
  const s = settings(opts, x);
  const named = opts.device !== undefined ? parseNbdDevice(opts.device) : undefined;
  const iface = await kernelInterface(s.netlink);
  const backendId = `aionbd:${process.pid}:${++attachSeq}:${x.bdev.name}`;
  if (iface.kind === 'ioctl') return attachIoctl(server, x, s, named, backendId, log);
  const { kernelFds, conns } = openConns(server, x, s.connections);
  let index: number;
  try {
    index = await native().nbd.connect({
      ...(named !== undefined ? { index: named } : {}),
      sizeBytes: x.size,
      blockSize: s.blockSize,
      serverFlags: x.flags,
      ...(s.timeout > 0 ? { timeout: s.timeout } : {}),
      deadConnTimeout: s.deadConnTimeout,
      backendId,
      fds: kernelFds,
    });
  } catch (err) {
    for (const c of conns) c.sock.destroy();
    const dev = named !== undefined ? nbdDevicePath(named) : null;
    throw kernelError(err, `attaching ${dev ?? 'an nbd device'}`, dev);
  } finally {
    // The kernel holds its own reference to every socket it took.
    closeFds(kernelFds);
  }
  return new KernelDisk({ server, x, index, mode: 'netlink', conns, s, backendId, family: iface.family, ioctlEnded: null, log });
}

async function attachIoctl(
  server: NbdServer,
  x: Export,
  s: Settings,
  named: number | undefined,
  backendId: string,
  log: Logger,
): Promise<KernelDisk> {
  const candidates = named !== undefined ? [named] : freeNbdDevices();
  for (const index of candidates) {
    const path = nbdDevicePath(index);
    const { kernelFds, conns } = openConns(server, x, s.connections);
    let ended: (errno: number) => void = () => undefined;
    const ioctlEnded = new Promise<number>((resolve) => {
      ended = resolve;
    });
    try {
      // The native thread closes kernelFds once the kernel has (or has refused) them.
      await new Promise<void>((resolve, reject) => {
        native().nbd.ioctlStart(
          path,
          { sizeBytes: x.size, blockSize: s.blockSize, flags: x.flags, timeout: s.timeout },
          kernelFds,
          (phase, errno) => {
            if (phase === 1) ended(errno);
            else if (errno === 0) resolve();
            else reject(Object.assign(new Error(`ioctl on ${path}`), { syscall: 'ioctl', errno: -errno }));
          },
        );
      });
    } catch (err) {
      for (const c of conns) c.sock.destroy();
      if (errnoOf(err) === EBUSY && named === undefined) continue; // taken since we looked: next one
      throw kernelError(err, `attaching ${path}`, path);
    }
    return new KernelDisk({ server, x, index, mode: 'ioctl', conns, s, backendId, family: null, ioctlEnded, log });
  }
  throw new NoFreeNbdDeviceError();
}

interface DiskInit {
  server: NbdServer;
  x: Export;
  index: number;
  mode: 'netlink' | 'ioctl';
  conns: Conn[];
  s: Settings;
  backendId: string;
  family: NetlinkFamily | null;
  ioctlEnded: Promise<number> | null;
  log: Logger;
}

export class KernelDisk {
  readonly device: string;
  readonly index: number;
  readonly export: Export;
  readonly mode: 'netlink' | 'ioctl';
  readonly connections: number;
  /** Resolves when the kernel has let go of the device and every connection has ended. */
  readonly ended: Promise<void>;
  readonly #server: NbdServer;
  readonly #s: Settings;
  readonly #backendId: string;
  readonly #ioctlEnded: Promise<number> | null;
  readonly #log: Logger;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #reconnectTimes: number[] = [];
  #conns: Conn[];
  #stopping: Promise<void> | null = null;
  #reconnecting = false;
  /** LINK_DEAD came and not every dead connection has been replaced yet. */
  #linkDead = false;
  /** ioctl: NBD_DO_IT has returned and the device is cleared. */
  #released = false;
  #resolveEnded: () => void = () => undefined;
  #resizing: Promise<void> = Promise.resolve();

  constructor(d: DiskInit) {
    this.index = d.index;
    this.device = nbdDevicePath(d.index);
    this.export = d.x;
    this.mode = d.mode;
    this.connections = d.s.connections;
    this.#server = d.server;
    this.#s = d.s;
    this.#backendId = d.backendId;
    this.#ioctlEnded = d.ioctlEnded;
    this.#conns = d.conns;
    this.#log = d.log.child({ nbd: this.device });
    this.ended = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
    for (const c of this.#conns) this.#watch(c);
    this.#unsubscribe.push(
      d.x.bdev.onRemove(() => {
        void this.stop('its bdev was removed');
      }),
    );
    this.#unsubscribe.push(
      d.x.bdev.onResize(() => {
        this.#resizing = this.#resizing.then(() => this.#applySize());
      }),
    );
    if (d.family !== null && d.mode === 'netlink' && d.s.deadConnTimeout > 0) {
      this.#unsubscribe.push(
        onLinkDead(d.family, (i) => {
          if (i !== null && i !== this.index) return;
          this.#linkDead = true;
          void this.#reconnect();
        }),
      );
    }
    // ioctl: NBD_DO_IT returning means the kernel has dropped the device, whoever asked.
    void d.ioctlEnded?.then(() => {
      this.#released = true;
      void this.stop('the kernel dropped the device');
    });
    this.#log.info(
      { export: d.x.name, mode: d.mode, connections: d.s.connections, blockSize: d.s.blockSize, timeout: d.s.timeout },
      'attached to the kernel',
    );
    if (d.x.bdev.closed) void this.stop('its bdev was removed');
  }

  get bdevName(): string {
    return this.export.bdev.name;
  }

  /** Resolves once the kernel has been told of every resize of the bdev so far (failures are logged). */
  get resized(): Promise<void> {
    return this.#resizing;
  }

  async #applySize(): Promise<void> {
    const size = this.export.bdev.sizeBytes,
      was = this.export.size;
    if (this.#stopping !== null || size === was) return;
    if (size > was) this.export.setSize(size);
    try {
      if (this.mode === 'netlink') await native().nbd.resize(this.index, size, this.#backendId);
      else await native().nbd.ioctlSetSize(this.device, size);
      this.export.setSize(size);
      this.#log.info({ from: was, to: size }, 'device resized');
    } catch (err) {
      // The kernel keeps the size it had: so does what we count as told (a shrink stays refused).
      this.#log.warn(
        { err: kernelError(err, `resizing ${this.device}`, this.device).message, size },
        'the kernel did not take the new size',
      );
    }
  }

  #watch(c: Conn): void {
    void c.done.then(() => {
      this.#onConnEnded();
    });
  }

  #onConnEnded(): void {
    if (this.#stopping !== null) return;
    if (this.mode === 'netlink' && this.#s.deadConnTimeout > 0) {
      // Our end of a dead socket ends once the requests we still had on it are answered,
      // which can be well after LINK_DEAD.
      if (this.#linkDead) {
        void this.#reconnect();
        return;
      }
      if (!this.#conns.every((c) => c.ended)) return;
      // LINK_DEAD may still be on its way: a reconnect then keeps the device.
      setTimeout(() => {
        if (!this.#linkDead && !this.#reconnecting && this.#conns.every((c) => c.ended)) void this.stop('every connection ended');
      }, LINK_DEAD_GRACE_MS).unref();
      return;
    }
    if (this.#conns.every((c) => c.ended)) void this.stop('every connection ended');
  }

  // Replaces every connection of ours that has ended, in one RECONFIGURE. Called on LINK_DEAD
  // and again whenever a connection ends while a LINK_DEAD is pending.
  async #reconnect(): Promise<void> {
    if (this.#stopping !== null || this.#reconnecting) return;
    const dead = this.#conns.filter((c) => c.ended);
    if (dead.length === 0) return;
    this.#reconnecting = true;
    this.#linkDead = false;
    try {
      const now = Date.now();
      while (this.#reconnectTimes.length > 0 && now - (this.#reconnectTimes[0] as number) > 60_000) this.#reconnectTimes.shift();
      if (this.#reconnectTimes.length >= RECONNECT_LIMIT) {
        this.#log.warn({ reconnects: this.#reconnectTimes.length }, 'connections keep dying; disconnecting the device');
        void this.stop('too many reconnects');
        return;
      }
      this.#reconnectTimes.push(now);
      const { kernelFds, conns } = openConns(this.#server, this.export, dead.length);
      try {
        await native().nbd.reconfigure(this.index, kernelFds, this.#backendId);
      } catch (err) {
        for (const c of conns) c.sock.destroy();
        this.#log.warn({ err: kernelError(err, `reconnecting ${this.device}`, this.device).message }, 'reconnect failed; disconnecting');
        void this.stop('reconnect failed');
        return;
      } finally {
        closeFds(kernelFds);
      }
      // A stop() that began meanwhile waits on the old list: these must not outlive it.
      if (this.#stopping !== null) {
        for (const c of conns) c.sock.destroy();
        return;
      }
      this.#conns = [...this.#conns.filter((c) => !dead.includes(c)), ...conns];
      for (const c of conns) this.#watch(c);
      this.#log.info({ replaced: conns.length }, 'reconnected');
    } finally {
      this.#reconnecting = false;
    }
    if (this.#linkDead) void this.#reconnect();
  }

  /** Detaches: the kernel fails the device's I/O in flight with EIO and lets it go. Idempotent. */
  stop(reason = 'detach'): Promise<void> {
    this.#stopping ??= this.#stop(reason);
    return this.#stopping;
  }

  async #stop(reason: string): Promise<void> {
    for (const u of this.#unsubscribe.splice(0)) u();
    const live = !this.#conns.every((c) => c.ended);
    // With our connections gone the device may have been given to someone else since.
    const ours = live || nbdBackend(this.index) === this.#backendId;
    this.#log.info({ reason, disconnect: ours }, 'detaching');
    if (ours && !this.#released && (this.mode === 'netlink' || live)) {
      try {
        if (this.mode === 'netlink') await native().nbd.disconnect(this.index);
        else await native().nbd.ioctlDisconnect(this.device);
      } catch (err) {
        this.#log.warn(
          { err: kernelError(err, `detaching ${this.device}`, this.device).message },
          'disconnect failed; dropping our connections',
        );
      }
    }
    const done = Promise.all([...this.#conns.map((c) => c.done), this.#ioctlEnded ?? Promise.resolve()]);
    if (!(await within(done, STOP_GRACE_MS))) {
      this.#log.warn('the kernel did not let go in time; dropping our connections');
      for (const c of this.#conns) c.sock.destroy();
      await within(done, STOP_GRACE_MS);
    }
    this.#log.info('detached');
    this.#resolveEnded();
  }
}
