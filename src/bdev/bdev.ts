// The generic bdev: enforces the I/O contract (bounds, alignment, exactly-once completion,
// never completing inside submit) and keeps statistics, so modules only do I/O.
import { randomUUID } from 'node:crypto';
import { constants } from 'node:os';
import { performance } from 'node:perf_hooks';
import { BdevIoMisuseError } from '../errors.js';
import { IoStat } from './iostat.js';
import { IoType, IO_TYPE_NAME, type BdevDriver, type BdevIo, type Complete } from './types.js';

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
}

export class Bdev {
  readonly name: string;
  readonly uuid: string;
  readonly aliases: string[];
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly readonly: boolean;
  readonly writeCache: boolean;
  readonly stat = new IoStat();
  readonly driver: BdevDriver;

  #outstanding = 0;
  #inSubmit = false;
  #deferred: BdevIo[] = [];
  #deferScheduled = false;
  #onIdle: (() => void) | null = null;
  #closing: Promise<void> | null = null;

  constructor(props: BdevProps, driver: BdevDriver) {
    this.name = props.name;
    this.uuid = props.uuid ?? randomUUID();
    this.aliases = props.aliases ?? [];
    this.blockSize = props.blockSize;
    this.numBlocks = props.numBlocks;
    this.readonly = props.readonly;
    this.writeCache = props.writeCache;
    this.driver = driver;
  }

  get module(): string { return this.driver.module; }
  get sizeBytes(): number { return this.blockSize * this.numBlocks; }
  get outstanding(): number { return this.#outstanding; }
  get closed(): boolean { return this.#closing !== null; }

  supports(type: IoType): boolean { return this.driver.supports(type); }

  /** Starts one I/O; io.done(io) runs exactly once, later, with io.result set. */
  submit(io: BdevIo): void {
    if (io.pending) throw new BdevIoMisuseError(this.name, 'submitted while pending');
    io.pending = true;
    io.startMs = performance.now();
    this.#outstanding++;
    this.stat.queueDepth = this.#outstanding;
    this.#inSubmit = true;
    try {
      const errno = this.#check(io);
      if (errno !== 0) this.#complete(io, -errno);
      else this.driver.submit(io, this.#complete);
    } finally {
      this.#inSubmit = false;
    }
  }

  // The NBD layer validates first; this is the layer boundary's own guard, so a caller bug
  // can never reach a file outside the bdev's range.
  #check(io: BdevIo): number {
    if (this.#closing !== null) return 108; // ESHUTDOWN
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

  readonly #complete: Complete = (io, result) => {
    if (!io.pending) throw new BdevIoMisuseError(this.name, `completed twice by module ${this.driver.module}`);
    io.pending = false;
    io.result = result;
    this.#outstanding--;
    this.stat.queueDepth = this.#outstanding;
    this.stat.record(io.type, io.length, result, io.startMs, performance.now());
    if (this.#inSubmit) this.#defer(io);
    else io.done(io);
    if (this.#outstanding === 0 && this.#onIdle !== null) this.#onIdle();
  };

  #defer(io: BdevIo): void {
    this.#deferred.push(io);
    if (this.#deferScheduled) return;
    this.#deferScheduled = true;
    queueMicrotask(this.#runDeferred);
  }

  readonly #runDeferred = (): void => {
    this.#deferScheduled = false;
    const list = this.#deferred;
    // Callbacks may submit again and defer more; those wait for the next microtask.
    this.#deferred = [];
    for (const io of list) io.done(io);
  };

  /** Refuses new I/O, waits for outstanding I/O, then releases the module's resources. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#outstanding > 0) await new Promise<void>((resolve) => { this.#onIdle = resolve; });
    this.#onIdle = null;
    await this.driver.destruct();
  }
}
