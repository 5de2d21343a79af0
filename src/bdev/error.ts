// The error bdev (SPDK's vbdev_error): EE_<base>, a pass-through over its base that fails,
// holds, corrupts or delays chosen I/O on request, to test how a client copes.
import { constants } from 'node:os';
import { BdevWrongModuleError, InvalidBdevError } from '../errors.js';
import { Bdev } from './bdev.js';
import { bufferPool } from './buffers.js';
import { blockStatus, knowsDepth } from './block_status.js';
import { ChildPool, type ChildIo } from './child_io.js';
import { IoType, type BdevDriver, type BdevIo, type BlockExtent, type ConfigEntry } from './types.js';

const E = constants.errno;

export const ERROR_TYPES = ['failure', 'pending', 'corrupt_data', 'nomem'] as const;
export type ErrorType = (typeof ERROR_TYPES)[number];
/** SPDK's io_type values for bdev_error_inject_error: one type, `all`, or `clear` (resets every counter). */
export const INJECT_IO_TYPES = ['read', 'write', 'unmap', 'flush', 'all', 'clear'] as const;
export type InjectIoType = (typeof INJECT_IO_TYPES)[number];

export interface Injection {
  ioType: InjectIoType;
  errorType: ErrorType;
  /** How many I/Os to hit (default 1). */
  num?: number | undefined;
  /** Hit only while at least this many I/Os are already in flight (default 0). */
  queueDepth?: number | undefined;
  /** corrupt_data: which byte of the data to change. */
  corruptOffset?: number | undefined;
  /** corrupt_data: XORed into that byte, 1..255. */
  corruptValue?: number | undefined;
}

interface Slot { type: ErrorType | null; num: number; queueDepth: number; corruptOffset: number; corruptValue: number }

const TAG_CORRUPT_READ = 1;
const TAG_BOUNCE = 2;

class ErrorDriver implements BdevDriver {
  readonly module = 'error';
  readonly #base: Bdev;
  readonly #children = new ChildPool((c) => this.#childDone(c));
  // Indexed by IoType; only read, write, unmap and flush can be injected (as SPDK).
  readonly #slots: Slot[] = [];
  readonly #pending: BdevIo[] = [];
  readonly #retry: BdevIo[] = [];
  #retryScheduled = false;
  #inflight = 0;
  // Of the read corruption in force (set when a read is chosen, applied when it completes).
  #corruptOffset = 0;
  #corruptValue = 0;
  unsubscribe: () => void = () => undefined;

  readonly ioFlags: number;

  constructor(base: Bdev) {
    this.#base = base;
    this.ioFlags = base.ioFlags;
    for (let t = 0; t <= IoType.Reset; t++) this.#slots.push({ type: null, num: 0, queueDepth: 0, corruptOffset: 0, corruptValue: 0 });
  }

  get base(): Bdev { return this.#base; }
  get pending(): number { return this.#pending.length; }

  inject(j: Injection): void {
    if (j.ioType === 'clear') {
      for (const s of this.#slots) { s.type = null; s.num = 0; }
      return;
    }
    const num = j.num ?? 1;
    const qd = j.queueDepth ?? 0;
    const off = j.corruptOffset ?? 0;
    const val = j.corruptValue ?? 0;
    if (!Number.isInteger(num) || num < 0) throw new InvalidBdevError(`num ${num} must be a whole number >= 0`);
    if (!Number.isInteger(qd) || qd < 0) throw new InvalidBdevError(`queue_depth ${qd} must be a whole number >= 0`);
    if (j.errorType === 'corrupt_data' && (!Number.isInteger(val) || val < 1 || val > 255)) {
      throw new InvalidBdevError(`corrupt_value ${val} must be 1..255 for corrupt_data`);
    }
    if (!Number.isInteger(off) || off < 0) throw new InvalidBdevError(`corrupt_offset ${off} must be a whole number >= 0`);
    const types = j.ioType === 'all' ? [IoType.Read, IoType.Write, IoType.Unmap, IoType.Flush]
      : [{ read: IoType.Read, write: IoType.Write, unmap: IoType.Unmap, flush: IoType.Flush }[j.ioType]];
    for (const t of types) {
      const s = this.#slots[t] as Slot;
      s.type = j.errorType; s.num = num; s.queueDepth = qd; s.corruptOffset = off; s.corruptValue = val;
    }
  }

  /** Sends every held ("pending") I/O on to the base. */
  resumePending(): number {
    const held = this.#pending.splice(0);
    for (const io of held) this.#pass(io);
    return held.length;
  }

  supports(type: IoType): boolean { return this.#base.supports(type); }

  submit(io: BdevIo): void {
    if (io.type === IoType.Reset) this.#abortPending();
    const s = this.#slots[io.type];
    if (s === undefined || s.type === null || s.num === 0 || this.#inflight < s.queueDepth) { this.#pass(io); return; }
    s.num--;
    switch (s.type) {
      case 'failure': io.complete(-E.EIO); return;
      case 'pending': this.#pending.push(io); return;
      case 'nomem': this.#later(io); return;
      case 'corrupt_data': this.#corrupt(io, s); return;
    }
  }

  #pass(io: BdevIo): void {
    this.#inflight++;
    this.#base.submit(this.#children.copyOf(io, 0));
  }

  // SPDK's bdev layer retries NOMEM I/O: for the client it is a delay, never an error.
  #later(io: BdevIo): void {
    this.#retry.push(io);
    if (this.#retryScheduled) return;
    this.#retryScheduled = true;
    setImmediate(() => {
      this.#retryScheduled = false;
      for (const x of this.#retry.splice(0)) this.#pass(x);
    });
  }

  #corrupt(io: BdevIo, s: Slot): void {
    const c = this.#children.copyOf(io, 0);
    if (io.type === IoType.Read) {
      c.tag = TAG_CORRUPT_READ;
      this.#corruptOffset = s.corruptOffset; this.#corruptValue = s.corruptValue;
    } else if (io.type === IoType.Write && io.buf !== null) {
      // A corrupted copy goes to the base at the original offset; the caller's data is untouched.
      const bounce = bufferPool().get(io.length);
      io.buf.copy(bounce, 0, 0, io.length);
      if (s.corruptOffset < io.length) bounce[s.corruptOffset] = (bounce[s.corruptOffset] as number) ^ s.corruptValue;
      c.buf = bounce;
      c.tag = TAG_BOUNCE;
    }
    this.#inflight++;
    this.#base.submit(c);
  }

  #childDone(c: ChildIo): void {
    const parent = c.parent as BdevIo;
    const result = c.result;
    if (c.tag === TAG_CORRUPT_READ && result === 0 && parent.buf !== null && this.#corruptOffset < parent.length) {
      parent.buf[this.#corruptOffset] = (parent.buf[this.#corruptOffset] as number) ^ this.#corruptValue;
    }
    if (c.tag === TAG_BOUNCE && c.buf !== null) bufferPool().put(c.buf);
    this.#children.put(c);
    this.#inflight--;
    parent.complete(result);
  }

  #abortPending(): void {
    for (const io of this.#pending.splice(0)) io.complete(-E.ECANCELED);
  }

  abort(): void { this.#abortPending(); }

  // Injections are for I/O; block status is the base's.
  blockStatus(offset: number, length: number): Promise<BlockExtent[]> { return blockStatus(this.#base, offset, length); }
  knowsDepth(): boolean { return knowsDepth(this.#base); }

  info(): Record<string, unknown> { return { error_disk: { base_bdev: this.#base.name } }; }

  config(b: Bdev): ConfigEntry {
    // SPDK's entry; the name only when it is not SPDK's EE_<base> (an aionbd extension).
    const named = b.name === defaultName(this.#base) ? {} : { name: b.name };
    return { method: 'bdev_error_create', params: { base_name: this.#base.name, ...named, uuid: b.uuid } };
  }

  destruct(): Promise<void> {
    this.unsubscribe();
    return Promise.resolve();
  }
}

/** SPDK's only name for an error bdev. */
const defaultName = (base: Bdev): string => `EE_${base.name}`;

/** EE_<base> unless named: the caller registers it with a claim on base. */
export function createErrorBdev(base: Bdev, opts: { uuid?: string | undefined; name?: string | undefined } = {}): Bdev {
  const driver = new ErrorDriver(base);
  const b = new Bdev({
    name: opts.name ?? defaultName(base), blockSize: base.blockSize, numBlocks: base.numBlocks, readonly: base.readonly,
    uuid: opts.uuid, writeCache: base.writeCache,
  }, driver);
  // A grown base (rescan) grows the pass-through with it.
  driver.unsubscribe = base.onResize(() => b.resize(base.numBlocks));
  return b;
}

function errorDriver(b: Bdev): ErrorDriver {
  if (!(b.driver instanceof ErrorDriver)) throw new BdevWrongModuleError(b.name, b.module, 'error');
  return b.driver;
}

export function injectError(b: Bdev, j: Injection): void { errorDriver(b).inject(j); }
export function resumePending(b: Bdev): number { return errorDriver(b).resumePending(); }
