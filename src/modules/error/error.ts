// The error bdev (SPDK's vbdev_error): EE_<base>, a pass-through over its base that fails,
// holds, corrupts or delays chosen I/O on request, to test how a client copes.
import { constants } from 'node:os';
import { InvalidBdevError } from '../../errors.js';
import { Bdev, driverOf } from '../../bdev/bdev.js';
import { bufferPool } from '../../bdev/buffers.js';
import type { ChildIo } from '../../bdev/child_io.js';
import { PassThroughDriver } from '../../bdev/passthrough.js';
import { IoType, type BdevIo, type ConfigEntry } from '../../bdev/types.js';

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

/**
 * The child tag holds offset * 256 + value, exact below 2^53: a larger offset is clamped to this,
 * which changes nothing (no I/O is that long, so neither corrupts a byte).
 */
const MAX_TAG_OFFSET = 2 ** 44;

interface Slot {
  type: ErrorType | null;
  num: number;
  queueDepth: number;
  corruptOffset: number;
  corruptValue: number;
}

// Child tags: a corrupted READ carries offset * 256 + value (value 1..255, so the tag is > 0);
// a WRITE sent as a corrupted copy carries TAG_BOUNCE, to give the copy back.
const TAG_BOUNCE = -1;

class ErrorDriver extends PassThroughDriver {
  readonly module = 'error';
  // Indexed by IoType; only read, write, unmap and flush can be injected (as SPDK).
  readonly #slots: Slot[] = [];
  readonly #pending: BdevIo[] = [];
  readonly #retry: BdevIo[] = [];
  #retryScheduled = false;

  constructor(base: Bdev) {
    // A grown base (rescan) grows the pass-through with it.
    super(base, { followResize: true });
    for (let t = 0; t <= IoType.Reset; t++) this.#slots.push({ type: null, num: 0, queueDepth: 0, corruptOffset: 0, corruptValue: 0 });
  }

  get pending(): number {
    return this.#pending.length;
  }

  inject(j: Injection): void {
    if (j.ioType === 'clear') {
      for (const s of this.#slots) {
        s.type = null;
        s.num = 0;
      }
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
    const types =
      j.ioType === 'all'
        ? [IoType.Read, IoType.Write, IoType.Unmap, IoType.Flush]
        : [{ read: IoType.Read, write: IoType.Write, unmap: IoType.Unmap, flush: IoType.Flush }[j.ioType]];
    for (const t of types) {
      const s = this.#slots[t] as Slot;
      s.type = j.errorType;
      s.num = num;
      s.queueDepth = qd;
      s.corruptOffset = off;
      s.corruptValue = val;
    }
  }

  /** Sends every held ("pending") I/O on to the base. */
  resumePending(): number {
    const held = this.#pending.splice(0);
    for (const io of held) this.children.forward(io, this.base);
    return held.length;
  }

  override submit(io: BdevIo): void {
    if (io.type === IoType.Reset) this.#abortPending();
    const s = this.#slots[io.type];
    if (s === undefined || s.type === null || s.num === 0 || this.children.inflight < s.queueDepth) {
      this.children.forward(io, this.base);
      return;
    }
    s.num--;
    switch (s.type) {
      case 'failure':
        io.complete(-E.EIO);
        return;
      case 'pending':
        this.#pending.push(io);
        return;
      case 'nomem':
        this.#later(io);
        return;
      case 'corrupt_data':
        this.#corrupt(io, s);
        return;
    }
  }

  // SPDK's bdev layer retries NOMEM I/O: for the client it is a delay, never an error.
  #later(io: BdevIo): void {
    this.#retry.push(io);
    if (this.#retryScheduled) return;
    this.#retryScheduled = true;
    setImmediate(() => {
      this.#retryScheduled = false;
      for (const x of this.#retry.splice(0)) this.children.forward(x, this.base);
    });
  }

  #corrupt(io: BdevIo, s: Slot): void {
    if (io.type === IoType.Read) {
      this.children.forward(io, this.base, 0, Math.min(s.corruptOffset, MAX_TAG_OFFSET) * 256 + s.corruptValue);
    } else if (io.type === IoType.Write && io.buf !== null) {
      // A corrupted copy goes to the base at the original offset; the caller's data is untouched.
      const bounce = bufferPool().get(io.length);
      io.buf.copy(bounce, 0, 0, io.length);
      if (s.corruptOffset < io.length) bounce[s.corruptOffset] = (bounce[s.corruptOffset] as number) ^ s.corruptValue;
      this.children.forward(io, this.base, 0, TAG_BOUNCE, bounce);
    } else {
      this.children.forward(io, this.base);
    }
  }

  protected override childDone(c: ChildIo): boolean {
    const parent = c.parent as BdevIo;
    if (c.tag === TAG_BOUNCE && c.buf !== null) bufferPool().put(c.buf);
    else if (c.tag > 0 && c.result === 0 && parent.buf !== null) {
      const at = Math.floor(c.tag / 256);
      if (at < parent.length) parent.buf[at] = (parent.buf[at] as number) ^ (c.tag % 256);
    }
    return true;
  }

  #abortPending(): void {
    for (const io of this.#pending.splice(0)) io.complete(-E.ECANCELED);
  }

  abort(): void {
    this.#abortPending();
  }

  info(): Record<string, unknown> {
    return { error_disk: { base_bdev: this.base.name } };
  }

  config(b: Bdev): ConfigEntry {
    // SPDK's entry; the name only when it is not SPDK's EE_<base> (an aionbd extension).
    const named = b.name === defaultName(this.base) ? {} : { name: b.name };
    return { method: 'bdev_error_create', params: { base_name: this.base.name, ...named, uuid: b.uuid } };
  }
}

/** SPDK's only name for an error bdev. */
const defaultName = (base: Bdev): string => `EE_${base.name}`;

/** EE_<base> unless named: the caller registers it with a claim on base. */
export function createErrorBdev(base: Bdev, opts: { uuid?: string | undefined; name?: string | undefined } = {}): Bdev {
  return new Bdev(
    {
      name: opts.name ?? defaultName(base),
      blockSize: base.blockSize,
      numBlocks: base.numBlocks,
      readonly: base.readonly,
      uuid: opts.uuid,
      writeCache: base.writeCache,
    },
    new ErrorDriver(base),
  );
}

const errorDriver = (b: Bdev): ErrorDriver => driverOf(b, ErrorDriver, 'error');

export function injectError(b: Bdev, j: Injection): void {
  errorDriver(b).inject(j);
}
export function resumePending(b: Bdev): number {
  return errorDriver(b).resumePending();
}
