// The generic bdev: enforces the I/O contract (bounds, alignment, exactly-once completion,
// never completing inside submit), keeps statistics and tells its users about removal and
// resizing, so modules only do I/O.
import { randomUUID } from 'node:crypto';
import { constants } from 'node:os';
import { performance } from 'node:perf_hooks';
import { BdevIoMisuseError, BdevWrongModuleError } from '../errors.js';
import { ESHUTDOWN } from '../util/errno.js';
import { IoStat } from './iostat.js';
import { NO_QOS_LIMITS, Qos, type QosLimits } from './qos.js';
import { ALL_IO_FLAGS, IoFlag, IoType, IO_TYPE_NAME, kSettle, type BdevDriver, type BdevIo, type Settle } from './types.js';

const E = constants.errno;

export interface BdevProps {
  name: string;
  blockSize: number;
  numBlocks: number;
  readonly: boolean;
  uuid?: string | undefined;
  aliases?: string[];
  /** Writes need an explicit FLUSH to be durable (a volatile cache below us). */
  writeCache: boolean;
  /** Split READ/WRITE at multiples of this many bytes (raid strip); 0 = no boundary. */
  optimalIoBoundary?: number;
}

/** Who holds a bdev (SPDK's exclusive_write claim): a virtual bdev module over it. */
export interface Claim {
  module: string;
  /** The claiming bdev's name, or the group (split's base) that shares one claim. */
  by: string;
  /** How many bdevs of that group hold it (split parts share one claim). */
  count: number;
}

type Listener = (bdev: Bdev) => void;

export class Bdev {
  readonly name: string;
  readonly uuid: string;
  readonly aliases: string[];
  readonly blockSize: number;
  readonly writeCache: boolean;
  readonly optimalIoBoundary: number;
  readonly stat: IoStat;
  readonly driver: BdevDriver;
  /** The IoFlag bits the module honours (its declaration, read once). */
  readonly ioFlags: number;
  /** Set and cleared by the registry only. */
  claim: Claim | null = null;

  #numBlocks: number;
  #readonly: boolean;
  #outstanding = 0;
  #inSubmit = false;
  // Two arrays swapped per batch: deferring completions allocates nothing once warm.
  #deferred: BdevIo[] = [];
  #running: BdevIo[] = [];
  #deferScheduled = false;
  #onIdle: (() => void) | null = null;
  #closing: Promise<void> | null = null;
  /** Set first thing in close(), before any listener runs. */
  #shut = false;
  #removeListeners: Listener[] = [];
  #resizeListeners: Listener[] = [];
  /** Rate limits (bdev_set_qos_limit); null when none is set, so the I/O path pays one check. */
  #qos: Qos | null = null;

  constructor(props: BdevProps, driver: BdevDriver) {
    this.name = props.name;
    this.uuid = props.uuid ?? randomUUID();
    this.aliases = props.aliases ?? [];
    this.blockSize = props.blockSize;
    this.#numBlocks = props.numBlocks;
    this.#readonly = props.readonly;
    this.writeCache = props.writeCache;
    this.optimalIoBoundary = props.optimalIoBoundary ?? 0;
    this.driver = driver;
    this.ioFlags = driver.ioFlags;
    this.stat = new IoStat();
    driver.attach?.(this);
  }

  get module(): string {
    return this.driver.module;
  }
  get numBlocks(): number {
    return this.#numBlocks;
  }
  get sizeBytes(): number {
    return this.blockSize * this.#numBlocks;
  }
  get readonly(): boolean {
    return this.#readonly;
  }
  get outstanding(): number {
    return this.#outstanding;
  }
  get closed(): boolean {
    return this.#shut;
  }

  supports(type: IoType): boolean {
    return this.driver.supports(type);
  }
  /** Whether the module honours every IoFlag bit in `flags`. */
  supportsFlags(flags: number): boolean {
    return (flags & ~this.ioFlags) === 0;
  }

  /** Runs fn when the bdev is removed (deleted or hot-removed), before in-flight I/O drains. Returns an unsubscribe function. */
  onRemove(fn: Listener): () => void {
    return subscribe(this.#removeListeners, fn);
  }
  /** Runs fn after the block count changed (rescan, lvol resize), or the bdev became read-only. */
  onResize(fn: Listener): () => void {
    return subscribe(this.#resizeListeners, fn);
  }

  /** Changes the block count (module use: rescan); listeners learn of it. */
  resize(numBlocks: number): void {
    if (numBlocks === this.#numBlocks) return;
    this.#numBlocks = numBlocks;
    for (const fn of [...this.#resizeListeners]) fn(this);
  }

  /** The QoS limits in force (all 0: none), as bdev_get_bdevs's assigned_rate_limits. */
  get qosLimits(): QosLimits {
    return this.#qos?.limits ?? { ...NO_QOS_LIMITS };
  }
  /** READ/WRITE waiting for QoS allowance now. */
  get qosHeld(): number {
    return this.#qos?.held ?? 0;
  }

  /** Sets the QoS limits given (0 removes one, absent keeps it); with none left, held I/O starts at once. */
  setQosLimits(limits: Partial<QosLimits>): void {
    const q = this.#qos ?? new Qos(this.#release);
    q.set(limits);
    if (q.active) {
      this.#qos = q;
      return;
    }
    this.#qos = null;
    q.drain();
  }

  /** Module use: writes fail with EROFS from now on (bdev_lvol_set_read_only); listeners learn of it. */
  setReadOnly(): void {
    if (this.#readonly) return;
    this.#readonly = true;
    for (const fn of [...this.#resizeListeners]) fn(this);
  }

  /** Starts one I/O; io.done(io) runs exactly once, later, with io.result set. */
  submit(io: BdevIo): void {
    if (io.pending) throw new BdevIoMisuseError(this.name, 'submitted while pending');
    if (io.flags !== 0) this.#checkFlags(io);
    io.pending = true;
    io.completed = false;
    io[kSettle] = this.#complete;
    io.startMs = performance.now();
    this.#outstanding++;
    this.stat.queueDepth = this.#outstanding;
    this.#inSubmit = true;
    try {
      const errno = this.#check(io);
      if (errno !== 0) this.#finish(io, -errno, false);
      else if (this.#qos === null || this.#qos.admit(io)) this.driver.submit(io);
    } finally {
      this.#inSubmit = false;
    }
  }

  // An I/O QoS held, started from its timer: a module that completes at once must not run the
  // submitter's callback from here either.
  readonly #release = (io: BdevIo): void => {
    const was = this.#inSubmit;
    this.#inSubmit = true;
    try {
      this.driver.submit(io);
    } finally {
      this.#inSubmit = was;
    }
  };

  // A flag the module did not declare would be dropped or misread below: the submitter (the NBD
  // layer advertises only what the bdev declares, and validates) has a bug. Thrown before the
  // I/O is taken, so the bdev's accounting stays whole.
  #checkFlags(io: BdevIo): void {
    const undeclared = io.flags & ~this.ioFlags;
    if (undeclared !== 0) {
      throw new BdevIoMisuseError(this.name, `flags ${ioFlagNames(undeclared)} sent, but the ${this.module} module does not declare them`);
    }
    if ((io.flags & ZERO_ONLY_FLAGS) !== 0 && io.type !== IoType.WriteZeroes) {
      throw new BdevIoMisuseError(
        this.name,
        `${IO_TYPE_NAME[io.type]} with flags ${ioFlagNames(io.flags & ZERO_ONLY_FLAGS)}, which only WRITE_ZEROES takes`,
      );
    }
  }

  // The NBD layer validates first; this is the layer boundary's own guard, so a caller bug
  // can never reach a file outside the bdev's range.
  #check(io: BdevIo): number {
    if (this.#shut) return ESHUTDOWN;
    if (!this.driver.supports(io.type)) return E.ENOTSUP;
    if (io.type === IoType.Flush || io.type === IoType.Reset) return 0;
    const bs = this.blockSize;
    if (io.offset % bs !== 0 || io.length % bs !== 0 || io.length <= 0) return E.EINVAL;
    if (io.offset > this.sizeBytes || io.length > this.sizeBytes - io.offset) return E.EINVAL;
    const writes = io.type === IoType.Write || io.type === IoType.Unmap || io.type === IoType.WriteZeroes;
    if (writes && this.readonly) return E.EROFS;
    if ((io.type === IoType.Read || io.type === IoType.Write) && (io.buf === null || io.buf.length < io.length)) {
      throw new BdevIoMisuseError(this.name, `${IO_TYPE_NAME[io.type]} without a buffer of ${io.length} bytes`);
    }
    return 0;
  }

  // What io.complete() calls: one function per bdev, given to each I/O at submit.
  readonly #complete: Settle = (io, result) => {
    this.#finish(io, result, true);
  };

  // Requests refused at submit (range, read-only, closing) are not I/O the device did: like
  // SPDK, they do not enter the statistics.
  #finish(io: BdevIo, result: number, counted: boolean): void {
    if (!io.pending || io.completed) throw new BdevIoMisuseError(this.name, `completed twice by module ${this.driver.module}`);
    io.completed = true;
    io.result = result;
    this.#outstanding--;
    this.stat.queueDepth = this.#outstanding;
    if (counted) this.stat.record(io.type, io.length, result, io.startMs, performance.now());
    if (this.#inSubmit) this.#defer(io);
    else {
      io.pending = false;
      io.done(io);
    }
    if (this.#outstanding === 0 && this.#onIdle !== null) this.#onIdle();
  }

  #defer(io: BdevIo): void {
    this.#deferred.push(io);
    if (this.#deferScheduled) return;
    this.#deferScheduled = true;
    queueMicrotask(this.#runDeferred);
  }

  readonly #runDeferred = (): void => {
    this.#deferScheduled = false;
    // Callbacks may submit again and defer more; those go to the other array and the next microtask.
    const list = this.#deferred;
    this.#deferred = this.#running;
    this.#running = list;
    for (let i = 0; i < list.length; i++) {
      const io = list[i] as BdevIo;
      io.pending = false;
      io.done(io);
    }
    list.length = 0;
  };

  /**
   * Refuses new I/O (ESHUTDOWN), tells the remove listeners (exports close their connections),
   * waits for outstanding I/O, then releases the module's resources. Idempotent.
   */
  close(): Promise<void> {
    this.#shut = true;
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const listeners = this.#removeListeners.splice(0);
    this.#resizeListeners.length = 0;
    for (const fn of listeners) fn(this);
    // What QoS holds was accepted before the close: it runs now rather than at the limit.
    this.#qos?.drain();
    this.driver.abort?.();
    if (this.#outstanding > 0)
      await new Promise<void>((resolve) => {
        this.#onIdle = resolve;
      });
    this.#onIdle = null;
    await this.driver.destruct();
  }
}

/** b's driver when it is a `cls`, else null. */
export function asDriver<T extends BdevDriver>(b: Bdev, cls: abstract new (...args: never[]) => T): T | null {
  return b.driver instanceof cls ? b.driver : null;
}

/** b's driver as a `cls`, for a module's own operations; BdevWrongModuleError (naming `module`) otherwise. */
export function driverOf<T extends BdevDriver>(b: Bdev, cls: abstract new (...args: never[]) => T, module: string): T {
  const d = asDriver(b, cls);
  if (d === null) throw new BdevWrongModuleError(b.name, b.module, module);
  return d;
}

/** Flags that mean something only to WRITE_ZEROES (FUA goes with any type: clients send it on READ). */
const ZERO_ONLY_FLAGS = IoFlag.NoHole | IoFlag.FastZero;

function ioFlagNames(flags: number): string {
  const names = Object.entries(IoFlag)
    .filter(([, bit]) => (flags & bit) !== 0)
    .map(([name]) => name);
  const unknown = flags & ~ALL_IO_FLAGS;
  if (unknown !== 0) names.push(`0x${unknown.toString(16)}`);
  return names.join('|');
}

function subscribe(list: Listener[], fn: Listener): () => void {
  list.push(fn);
  return () => {
    const i = list.indexOf(fn);
    if (i >= 0) list.splice(i, 1);
  };
}
