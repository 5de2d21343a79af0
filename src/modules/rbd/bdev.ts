// The RBD bdev: an image of a Ceph pool, served through librbd's asynchronous C API (see
// native/rbd_image.cc for the data path). Block status comes from rbd_diff_iterate2 over the
// image's object map (whole objects), and a resize by anyone (bdev_rbd_resize here, `rbd
// resize` elsewhere) reaches the bdev through librbd's header watch.
import { constants } from 'node:os';
import { InvalidBdevError } from '../../errors.js';
import { logger, type Logger } from '../../log.js';
import { Bdev, driverOf } from '../../bdev/bdev.js';
import { pushExtent } from '../../bdev/block_status.js';
import {
  ALL_IO_FLAGS,
  BLOCK_HOLE,
  BLOCK_ZERO,
  IoFlag,
  IoType,
  type BdevDriver,
  type BdevIo,
  type BlockExtent,
  type ConfigEntry,
  type DeviceDone,
} from '../../bdev/types.js';
import type { RbdConnection } from './cluster.js';
import { RbdQueue } from './queue.js';

const E = constants.errno;

export const RBD_QUEUE_DEPTH = 128;
export const RBD_MAX_BLOCK_SIZE = 65536;
/** The most of the image one block status answer covers (one diff call); the caller asks again. */
export const DIFF_WINDOW = 2 ** 30;

/** Where the image is and how it is reached, as bdev_rbd_create names it. */
export interface RbdImageRef {
  pool: string;
  image: string;
  /** A registered cluster's name, or undefined for a connection of the bdev's own. */
  clusterName?: string | undefined;
  /** The bdev's own connection: the Ceph user and options (SPDK's user_id and config). */
  userId?: string | undefined;
  config?: Record<string, string> | undefined;
}

export interface RbdBdevOptions extends RbdImageRef {
  name: string;
  blockSize: number;
  readonly?: boolean | undefined;
  uuid?: string | undefined;
  conn: RbdConnection;
  /** Runs after the image closed: releases or shuts down the connection. */
  release: () => Promise<void>;
  /**
   * Applies a new block count (the server's resizeBdev: its shrink checks, kernel devices told).
   * Default: the bdev's own resize().
   */
  resize?: ((b: Bdev, numBlocks: number) => Promise<void>) | undefined;
  queueDepth?: number | undefined;
  log?: Logger | undefined;
}

// What librbd and the OSDs answer that an NBD client can act on keeps its meaning; anything
// else (ETIMEDOUT from rados_osd_op_timeout, ESHUTDOWN when blocklisted, ENOTCONN...) is an
// I/O error, which NBD carries as EIO.
const KEPT = new Set([E.EIO, E.ENOSPC, E.EDQUOT, E.EROFS, E.EPERM, E.EINVAL, E.ENOTSUP, E.EOPNOTSUPP, E.ENOMEM]);

const FAST_THICK = IoFlag.FastZero | IoFlag.NoHole;

function errnoName(n: number): string {
  return Object.entries(E).find(([, v]) => v === n)?.[0] ?? `errno ${n}`;
}

class RbdDriver implements BdevDriver {
  readonly module = 'rbd';
  // FUA: librbd flushes after the write. NO_HOLE: write_zeroes with thick provisioning.
  // FAST_ZERO: plain write_zeroes is a discard done by the OSDs (objects removed, truncated or
  // zeroed in place); thick provisioning writes zeroes, so NO_HOLE with FAST_ZERO is refused.
  readonly ioFlags = ALL_IO_FLAGS;
  readonly queue: RbdQueue;
  #bdev: Bdev | null = null;
  /** Failing since the first error after the last success: said once, not per request. */
  #failing = false;

  constructor(
    readonly opts: RbdBdevOptions,
    readonly log: Logger,
  ) {
    this.queue = new RbdQueue(opts.conn, opts.queueDepth ?? RBD_QUEUE_DEPTH, this.#onDone, this.#onUpdate);
  }

  attach(b: Bdev): void {
    this.#bdev = b;
  }

  // Block status is blockStatus() below, not SEEK_DATA/SEEK_HOLE; there is nothing to RESET.
  supports(type: IoType): boolean {
    return type === IoType.Read || type === IoType.Write || type === IoType.Flush || type === IoType.Unmap || type === IoType.WriteZeroes;
  }

  submit(io: BdevIo): void {
    if (io.type === IoType.WriteZeroes && (io.flags & FAST_THICK) === FAST_THICK) {
      io.complete(-E.EOPNOTSUPP);
      return;
    }
    this.queue.push(io);
  }

  /**
   * The allocated objects of the range, as data, and what lies between them, as holes reading
   * zeroes: one rbd_diff_iterate2 call over at most DIFF_WINDOW. A cut list stops at its last
   * extent (the caller asks again from there).
   */
  async blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    const end = offset + Math.min(length, DIFF_WINDOW);
    const r = await this.queue.diff(offset, end - offset);
    const out: BlockExtent[] = [];
    let pos = offset;
    for (let i = 0; i + 1 < r.extents.length && pos < end; i += 2) {
      // Whole objects: an extent may begin before the range or end after it.
      const start = Math.max(pos, r.extents[i] as number);
      const stop = Math.min(end, (r.extents[i] as number) + (r.extents[i + 1] as number));
      if (stop <= pos) continue;
      pushExtent(out, start - pos, BLOCK_HOLE | BLOCK_ZERO, 0);
      pushExtent(out, stop - start, 0, 1);
      pos = stop;
    }
    if (!r.truncated) pushExtent(out, end - pos, BLOCK_HOLE | BLOCK_ZERO, 0);
    return out;
  }

  readonly #onDone: DeviceDone = (io, result) => {
    if (result === 0) {
      // A FLUSH with librbd's cache off succeeds without the cluster: it proves nothing.
      if (this.#failing && (io.type === IoType.Read || io.type === IoType.Write)) {
        this.#failing = false;
        this.log.info('rbd I/O succeeds again');
      }
      io.complete(0);
      return;
    }
    const errno = -result;
    if (!this.#failing) {
      this.#failing = true;
      this.log.warn(
        { errno: errnoName(errno), pool: this.opts.pool, image: this.opts.image },
        'rbd I/O failed (a timeout is the cluster not answering within rados_osd_op_timeout); reporting I/O errors until it succeeds again',
      );
    }
    io.complete(KEPT.has(errno) ? result : -E.EIO);
  };

  // The image header changed (a resize by anyone): read the size again, off the main thread.
  readonly #onUpdate = (): void => {
    this.queue
      .size()
      .then((bytes) => this.sizeChanged(bytes))
      .catch((err: unknown) => {
        this.log.warn({ err }, 'rbd: the image changed size, and the bdev keeps its own (I/O past the new end fails)');
      });
  };

  /** Applies a new image size to the bdev (a shrink may be refused: see Server.resizeBdev). */
  async sizeChanged(bytes: number): Promise<void> {
    const b = this.#bdev;
    if (b === null || b.closed) return;
    const blocks = Math.floor(bytes / b.blockSize);
    if (blocks === b.numBlocks) return;
    if (blocks === 0) throw new InvalidBdevError(`RBD image ${this.opts.pool}/${this.opts.image} is now smaller than one block`);
    if (this.opts.resize !== undefined) await this.opts.resize(b, blocks);
    else b.resize(blocks);
  }

  info(): Record<string, unknown> {
    const o = this.opts;
    return {
      rbd: {
        pool_name: o.pool,
        rbd_name: o.image,
        ...(o.clusterName !== undefined ? { cluster_name: o.clusterName } : {}),
        ...(o.userId !== undefined ? { user_id: o.userId } : {}),
        ...(o.config !== undefined ? { config: { ...o.config } } : {}),
        readonly: o.readonly === true,
        queue_depth: this.queue.depth,
      },
    };
  }

  config(b: Bdev): ConfigEntry {
    const o = this.opts;
    return {
      method: 'bdev_rbd_create',
      params: {
        name: b.name,
        pool_name: o.pool,
        rbd_name: o.image,
        block_size: b.blockSize,
        uuid: b.uuid,
        ...(o.clusterName !== undefined ? { cluster_name: o.clusterName } : {}),
        ...(o.userId !== undefined ? { user_id: o.userId } : {}),
        ...(o.config !== undefined ? { config: { ...o.config } } : {}),
        ...(o.readonly === true ? { read_only: true } : {}),
      },
    };
  }

  async destruct(): Promise<void> {
    try {
      await this.queue.close();
    } finally {
      await this.opts.release();
    }
  }
}

function checkBlockSize(n: number): void {
  if (!Number.isSafeInteger(n) || n < 512 || n > RBD_MAX_BLOCK_SIZE || (n & (n - 1)) !== 0) {
    throw new InvalidBdevError(`block size ${n} must be a power of two of at least 512 and at most ${RBD_MAX_BLOCK_SIZE}`);
  }
}

/** Opens the image and builds an RBD bdev over it (unregistered); a failure releases the connection. */
export async function createRbdBdev(opts: RbdBdevOptions): Promise<Bdev> {
  const log = (opts.log ?? logger()).child({ bdev: opts.name });
  let driver: RbdDriver | null = null;
  try {
    checkBlockSize(opts.blockSize);
    driver = new RbdDriver(opts, log);
    const { size } = await driver.queue.open(opts.pool, opts.image, opts.readonly === true);
    const numBlocks = Math.floor(size / opts.blockSize);
    if (numBlocks === 0)
      throw new InvalidBdevError(`RBD image ${opts.pool}/${opts.image} is smaller than one ${opts.blockSize}-byte block`);
    if (size % opts.blockSize !== 0)
      log.warn({ size, blockSize: opts.blockSize }, 'image size is not a multiple of the block size; the tail is not exported');
    const b = new Bdev(
      { name: opts.name, blockSize: opts.blockSize, numBlocks, readonly: opts.readonly === true, uuid: opts.uuid, writeCache: true },
      driver,
    );
    log.debug({ pool: opts.pool, image: opts.image, size }, 'rbd bdev ready');
    return b;
  } catch (err) {
    if (driver !== null)
      await driver.queue.close().catch((e: unknown) => {
        log.debug({ err: e }, 'rbd: closing the image after a failed create failed too');
      });
    await opts.release();
    throw err;
  }
}

/** The RBD driver of b; BdevWrongModuleError when b is another module's. */
export function rbdDriverOf(b: Bdev): RbdDriver {
  return driverOf(b, RbdDriver, 'rbd');
}
