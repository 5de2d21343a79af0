// The AIO bdev: a regular file or a block device served through Linux kernel AIO, opened with
// O_DIRECT so the page cache is bypassed (buffered only where the file system refuses it). The
// uring bdev is the same driver over the io_uring engine: a FileBdevKind says which.
import fs from 'node:fs';
import path from 'node:path';
import { constants } from 'node:os';
import { native, FileOp, type FileInfo } from '../../native.js';
import { AioMaxNrError, BdevWrongModuleError, InvalidBdevError, SystemError, describeOpenError } from '../../errors.js';
import { logger, type Logger } from '../../log.js';
import { openServedFile, type OpenedImage } from './open_file.js';
import { Bdev, driverOf } from '../../bdev/bdev.js';
import { AioQueue } from './aio_queue.js';
import { AIO_ENGINE, type EngineKind } from './aio_engine.js';
import { ALL_IO_FLAGS, IoFlag, IoType, type BdevDriver, type BdevIo, type ConfigEntry, type DeviceDone } from '../../bdev/types.js';

const E = constants.errno;

export const DEFAULT_QUEUE_DEPTH = 128;

export interface AioBdevOptions {
  /** Path of a regular file or block device. */
  filename: string;
  name: string;
  /** Bytes per block; omitted: the device's logical sector size, or 512 (or the file system's O_DIRECT alignment) for files. */
  blockSize?: number | undefined;
  readonly?: boolean | undefined;
  /** Create the file sparse with this many bytes when it does not exist. */
  size?: number | undefined;
  /** The most I/Os of this bdev in the kernel at once (its cap in the process's shared AIO engine). */
  queueDepth?: number | undefined;
  uuid?: string | undefined;
  /**
   * An --allow-path root: the file (a real path under it) is opened beneath it with no symlink
   * followed, and refused when it has more than one hard link. Never created.
   */
  within?: string | undefined;
  log?: Logger | undefined;
}

/** A module of file bdevs (aio, uring): this driver over one engine kind. */
export interface FileBdevKind {
  /** The module's name (Bdev.module) and its key in bdev_get_bdevs's driver_specific. */
  readonly module: string;
  /** The method that makes one again from save_config. */
  readonly createMethod: string;
  readonly engine: EngineKind;
  /** The largest queue depth: a bdev's slots fit one kernel context (ring). */
  maxDepth(): number;
  /** The typed error for the OsError the engine's setup threw (syscall io_setup, io_uring_setup). */
  setupError(err: NodeJS.ErrnoException, depth: number): Error;
}

export const AIO_FILES: FileBdevKind = {
  module: 'aio',
  createMethod: 'bdev_aio_create',
  engine: AIO_ENGINE,
  maxDepth: () => native().constants.aio.MAX_CONTEXT_EVENTS,
  setupError: (e, depth) =>
    e.code === 'EAGAIN'
      ? new AioMaxNrError(depth, readSysctl('aio-nr'), readSysctl('aio-max-nr'))
      : new SystemError(`io_setup(${depth}) failed: ${e.message}`, -(e.errno ?? -E.EIO), { cause: e }),
};

class AioDriver implements BdevDriver {
  readonly module: string;
  // FUA: RWF_DSYNC, or fdatasync after a fallocate. Fast zeroes: fallocate alone (see WRITE_ZEROES).
  readonly ioFlags = ALL_IO_FLAGS;
  readonly queue: AioQueue;
  #fdsyncIocb = true;

  constructor(
    readonly kind: FileBdevKind,
    name: string,
    readonly fd: number,
    readonly filename: string,
    readonly file: FileInfo,
    readonly readonly: boolean,
    readonly blockSizeOverride: boolean,
    depth: number,
    log: Logger,
  ) {
    this.module = kind.module;
    this.queue = new AioQueue(name, fd, depth, this.#onAioDone, log, kind.engine);
  }

  supports(type: IoType): boolean {
    switch (type) {
      case IoType.Read:
      case IoType.Write:
      case IoType.Flush:
      case IoType.Unmap:
      case IoType.WriteZeroes:
        return true;
      case IoType.SeekData:
      case IoType.SeekHole:
        return this.file.type === 'file';
      default:
        return false;
    }
  }

  submit(io: BdevIo): void {
    switch (io.type) {
      case IoType.Read:
      case IoType.Write:
        this.queue.push(io);
        return;
      case IoType.Flush:
        if (this.#fdsyncIocb) this.queue.push(io);
        else this.#fileOp(io, FileOp.Fdatasync, 0, 0);
        return;
      case IoType.Unmap:
        this.#fileOp(io, this.file.type === 'block' ? FileOp.Discard : FileOp.PunchHole, io.offset, io.length);
        return;
      case IoType.WriteZeroes: {
        // FAST_ZERO: only what the kernel does without writing zeroes (fallocate), else -EOPNOTSUPP.
        const fast = (io.flags & IoFlag.FastZero) !== 0,
          noHole = (io.flags & IoFlag.NoHole) !== 0;
        let op: FileOp;
        if (this.file.type === 'block') {
          // A device zeroes without unmapping only through BLKZEROOUT, which may fall back to
          // writing zeroes: a fast zero that must keep the range allocated cannot be promised.
          if (fast && noHole) {
            io.complete(-E.EOPNOTSUPP);
            return;
          }
          op = fast ? FileOp.PunchHole : FileOp.ZeroOut;
        } else if (noHole) op = fast ? FileOp.ZeroRangeFast : FileOp.ZeroRange;
        else op = fast ? FileOp.PunchHole : FileOp.PunchOrZero;
        this.#fileOp(io, op, io.offset, io.length);
        return;
      }
      case IoType.SeekData:
      case IoType.SeekHole:
        this.#fileOp(io, io.type === IoType.SeekData ? FileOp.SeekData : FileOp.SeekHole, io.offset, 0);
        return;
      default:
        io.complete(-E.ENOTSUP);
    }
  }

  // Off the main thread; per-call allocation is fine here (TRIM and zeroing are not the hot path).
  #fileOp(io: BdevIo, op: FileOp, offset: number, length: number): void {
    native().fileOp(op, this.fd, offset, length, (res) => {
      // A durable WRITE_ZEROES with FUA needs the metadata change on disk too.
      if (res >= 0 && (io.flags & IoFlag.Fua) !== 0 && (io.type === IoType.WriteZeroes || io.type === IoType.Unmap)) {
        native().fileOp(FileOp.Fdatasync, this.fd, 0, 0, (r2) => {
          io.complete(Math.min(r2, 0));
        });
        return;
      }
      if (io.type === IoType.SeekData || io.type === IoType.SeekHole) io.complete(res);
      // TRIM is a hint: a file system that cannot punch holes simply keeps the data.
      else if (io.type === IoType.Unmap && res === -E.EOPNOTSUPP) io.complete(0);
      else io.complete(Math.min(res, 0));
    });
  }

  readonly #onAioDone: DeviceDone = (io, result) => {
    if (io.type === IoType.Flush && result === -E.EINVAL && this.#fdsyncIocb) {
      // Some file systems have no AIO (io_uring) fsync: flush on the thread pool from now on.
      this.#fdsyncIocb = false;
      this.#fileOp(io, FileOp.Fdatasync, 0, 0);
      return;
    }
    io.complete(result);
  };

  info(): Record<string, unknown> {
    return {
      [this.kind.module]: {
        filename: this.filename,
        block_size_override: this.blockSizeOverride,
        readonly: this.readonly,
        fallocate: this.file.type === 'file',
        o_direct: this.file.direct,
        user_ring: this.queue.userRing,
        queue_depth: this.queue.depth,
      },
    };
  }

  config(b: Bdev): ConfigEntry {
    return {
      method: this.kind.createMethod,
      params: { name: b.name, filename: this.filename, block_size: b.blockSize, readonly: this.readonly, uuid: b.uuid },
    };
  }

  async destruct(): Promise<void> {
    this.queue.close();
    await new Promise<void>((resolve, reject) => fs.close(this.fd, (err) => (err ? reject(err) : resolve())));
  }
}

/**
 * The largest block size an AIO bdev takes: Linux's largest logical block size, and the most
 * the NBD spec lets a server ask as a minimum block size (2^16). Beyond it every I/O would be a
 * read-modify-write of huge buffers.
 */
export const MAX_BLOCK_SIZE = 65536;

/** Exact for every safe integer (a 32-bit `n & (n - 1)` would wrap: 12G would pass). */
function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

function checkBlockSize(n: number): void {
  if (!isPowerOfTwo(n) || n < 512 || n > MAX_BLOCK_SIZE) {
    throw new InvalidBdevError(`block size ${n} must be a power of two of at least 512 and at most ${MAX_BLOCK_SIZE}`);
  }
}

function readSysctl(name: string): number | null {
  try {
    return Number(fs.readFileSync(`/proc/sys/fs/${name}`, 'utf8').trim());
  } catch {
    return null;
  }
}

/** What openImage() made on disk, so that a failure later removes it again. */
interface Created {
  file: string | null;
  dirs: string[];
}

function undoCreated(c: Created): void {
  if (c.file !== null) {
    try {
      fs.unlinkSync(c.file);
    } catch {
      /* already gone */
    }
  }
  for (const d of [...c.dirs].reverse()) {
    try {
      fs.rmdirSync(d);
    } catch {
      /* not empty, or gone */
    }
  }
}

function creationError(what: string, err: unknown): SystemError {
  const e = err as NodeJS.ErrnoException;
  return new SystemError(`cannot create ${describeOpenError(what, e)}`, -(e.errno ?? -E.EIO), { cause: e });
}

/**
 * mkdir -p, one component at a time. Node's recursive mkdir retries forever where mkdir says
 * ENOENT under a parent that exists (/proc/nope); here each missing directory gets one try.
 */
function makeParents(dir: string, c: Created): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) {
    missing.push(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (err) {
      throw creationError(d, err);
    }
    c.dirs.push(d);
  }
}

function openImage(opts: AioBdevOptions, c: Created): OpenedImage {
  const file = opts.filename;
  // Only the operator's own files are created (over RPC a file must exist, as in SPDK).
  if (opts.within === undefined && !fs.existsSync(file)) {
    if (opts.size === undefined) {
      throw new InvalidBdevError(
        `${file}: no such file; give a size (size=1G on the command line, or "size" in the API) to create it sparse`,
      );
    }
    if (opts.readonly === true) throw new InvalidBdevError(`${file}: no such file, and a readonly bdev cannot create it`);
    // Judged before anything is made: a file too small to hold one block would only fail later.
    const least = Math.max(512, opts.blockSize ?? 0);
    if (!Number.isSafeInteger(opts.size) || opts.size < least) {
      throw new InvalidBdevError(`size ${opts.size} is smaller than one ${least}-byte block: ${file} is not created`);
    }
    makeParents(path.dirname(file), c);
    try {
      const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NONBLOCK, 0o644);
      c.file = file;
      try {
        fs.ftruncateSync(fd, opts.size);
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      throw creationError(file, err);
    }
    opts.log?.info({ filename: file, size: opts.size }, 'created sparse image');
  }
  return openServedFile(file, { readonly: opts.readonly === true, direct: true, within: opts.within });
}

/** Opens (or creates) the file and builds an AIO bdev over it; a failure leaves nothing it created. */
export function createAioBdev(opts: AioBdevOptions): Bdev {
  return createFileBdev(AIO_FILES, opts);
}

/** Opens (or creates) the file and builds a bdev of `kind` over it; a failure leaves nothing it created. */
export function createFileBdev(kind: FileBdevKind, opts: AioBdevOptions): Bdev {
  const log = (opts.log ?? logger()).child({ bdev: opts.name });
  const depth = opts.queueDepth ?? DEFAULT_QUEUE_DEPTH;
  const maxDepth = kind.maxDepth();
  if (!Number.isInteger(depth) || depth < 1 || depth > maxDepth)
    throw new InvalidBdevError(`queue depth ${depth} is not in 1..${maxDepth}`);
  const wanted = opts.blockSize !== undefined && opts.blockSize !== 0 ? opts.blockSize : undefined;
  if (wanted !== undefined) checkBlockSize(wanted);
  const created: Created = { file: null, dirs: [] };
  let fd = -1;
  let ok = false;
  try {
    const opened = openImage({ ...opts, blockSize: wanted, log }, created);
    fd = opened.fd;
    // Said only now: the fd is known to be a regular file or a block device.
    if (!opened.direct)
      log.warn(
        { filename: opts.filename },
        'the file system refuses O_DIRECT; serving this bdev with buffered I/O (the page cache is used, FLUSH still syncs)',
      );
    const info = native().fileInfo(fd);
    if (info.type === 'other') throw new InvalidBdevError(`${opts.filename}: not a regular file or a block device`);
    // What the device needs: its logical sector size, and for O_DIRECT files the file system's alignment.
    const detected = Math.max(info.type === 'block' ? info.logicalBlockSize : 512, info.direct ? info.dioOffsetAlign : 0, 512);
    let blockSize = detected;
    if (wanted !== undefined) {
      if (wanted < detected) {
        throw new InvalidBdevError(`block size ${wanted} is below the ${detected}-byte sectors of ${opts.filename}`);
      }
      blockSize = wanted;
    }
    const numBlocks = Math.floor(info.size / blockSize);
    if (numBlocks === 0) throw new InvalidBdevError(`${opts.filename} is smaller than one ${blockSize}-byte block`);
    if (info.size % blockSize !== 0) {
      log.warn(
        { size: info.size, blockSize, usable: numBlocks * blockSize },
        'size is not a multiple of the block size; the tail is not exported',
      );
    }
    let driver: AioDriver;
    try {
      driver = new AioDriver(kind, opts.name, fd, opts.filename, info, opts.readonly === true, blockSize !== detected, depth, log);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.syscall === kind.engine.setupCall) throw kind.setupError(e, depth);
      throw err;
    }
    log.debug(
      { filename: opts.filename, blockSize, numBlocks, direct: info.direct, userRing: driver.queue.userRing },
      `${kind.module} bdev ready`,
    );
    ok = true;
    return new Bdev({ name: opts.name, blockSize, numBlocks, readonly: opts.readonly === true, uuid: opts.uuid, writeCache: true }, driver);
  } finally {
    if (!ok) {
      if (fd >= 0) fs.closeSync(fd);
      undoCreated(created);
    }
  }
}

/** The current size in bytes of the file or device under a bdev of `kind` (bdev_aio_rescan, bdev_uring_rescan). */
export function fileBdevSize(b: Bdev, kind: FileBdevKind = AIO_FILES): number {
  const d = driverOf(b, AioDriver, kind.module);
  if (d.kind !== kind) throw new BdevWrongModuleError(b.name, b.module, kind.module);
  return native().fileInfo(d.fd).size;
}
