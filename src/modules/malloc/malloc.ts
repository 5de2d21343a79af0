// The malloc bdev: a RAM disk, zeroed at creation. Memory comes from the addon in aligned
// chunks (one ArrayBuffer is limited to 2 GiB), so a bdev may be larger than one chunk.
// Block status comes from coarse zero tracking: a granule is "written" from the first WRITE
// that touches it until an UNMAP or WRITE_ZEROES covers it whole; unwritten granules read as
// zeroes (the memory is there, so they are zero, not holes).
import { constants } from 'node:os';
import { native } from '../../native.js';
import { Bdev } from '../../bdev/bdev.js';
import { BUFFER_ALIGN } from '../../bdev/buffers.js';
import { pushExtent } from '../../bdev/block_status.js';
import { checkGeometry } from '../../bdev/geometry.js';
import { ALL_IO_FLAGS, BLOCK_ZERO, IoType, type BdevDriver, type BdevIo, type BlockExtent, type ConfigEntry } from '../../bdev/types.js';

const E = constants.errno;
const CHUNK = 2 ** 30;
/** Zero-tracking granule, at least; larger bdevs use larger ones, so the map stays under 4 MiB. */
const MIN_GRANULE = 64 * 1024;
const MAX_GRANULES = 2 ** 22;

export interface MallocBdevOptions {
  /** Default: Malloc0, Malloc1, ... as SPDK. */
  name?: string | undefined;
  /** A multiple of 512. */
  blockSize: number;
  numBlocks: number;
  uuid?: string | undefined;
}

let nextIndex = 0;

class MallocDriver implements BdevDriver {
  readonly module = 'malloc';
  // Memory is all the storage there is (FUA), zeroing never frees it (NO_HOLE), and a fill is
  // faster than any WRITE of zeroes could be (FAST_ZERO).
  readonly ioFlags = ALL_IO_FLAGS;
  readonly #chunks: Buffer[] = [];
  /** Bytes per zero-tracking granule: a multiple of the block size. */
  readonly #granule: number;
  /** 1: the granule may hold data; 0: it reads as zeroes. */
  readonly #written: Uint8Array;

  constructor(
    readonly size: number,
    blockSize: number,
  ) {
    for (let left = size; left > 0; left -= CHUNK) {
      const b = Buffer.from(native().allocAligned(Math.min(left, CHUNK), BUFFER_ALIGN));
      b.fill(0);
      this.#chunks.push(b);
    }
    const want = Math.max(MIN_GRANULE, Math.ceil(size / MAX_GRANULES));
    this.#granule = Math.ceil(want / blockSize) * blockSize;
    this.#written = new Uint8Array(Math.ceil(size / this.#granule));
  }

  supports(type: IoType): boolean {
    return (
      type === IoType.Read ||
      type === IoType.Write ||
      type === IoType.Flush ||
      type === IoType.Unmap ||
      type === IoType.WriteZeroes ||
      type === IoType.Reset
    );
  }

  // Completes at once: the bdev layer defers the callback out of submit().
  submit(io: BdevIo): void {
    switch (io.type) {
      case IoType.Read:
        this.#copy(io.offset, io.length, io.buf as Buffer, false);
        break;
      case IoType.Write:
        // Marked before the copy: the map never calls zero what may hold data.
        this.#written.fill(1, Math.floor(io.offset / this.#granule), Math.ceil((io.offset + io.length) / this.#granule));
        this.#copy(io.offset, io.length, io.buf as Buffer, true);
        break;
      case IoType.Unmap:
      case IoType.WriteZeroes:
        this.#copy(io.offset, io.length, null, true);
        // Only granules zeroed whole; the edges keep what they may hold.
        this.#written.fill(0, Math.ceil(io.offset / this.#granule), Math.floor((io.offset + io.length) / this.#granule));
        break;
      case IoType.Flush:
      case IoType.Reset:
        break;
      default:
        io.complete(-E.ENOTSUP);
        return;
    }
    io.complete(0);
  }

  /** Walks the chunks a range spans: copies in (write), out (read), or zeroes (buf null). */
  #copy(offset: number, length: number, buf: Buffer | null, write: boolean): void {
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const chunk = this.#chunks[Math.floor(at / CHUNK)] as Buffer;
      const inChunk = at % CHUNK;
      const n = Math.min(length - done, CHUNK - inChunk);
      if (buf === null) chunk.fill(0, inChunk, inChunk + n);
      else if (write) buf.copy(chunk, inChunk, done, done + n);
      else chunk.copy(buf, done, inChunk, inChunk + n);
      done += n;
    }
  }

  blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    const g = this.#granule,
      end = offset + length;
    const out: BlockExtent[] = [];
    for (let i = Math.floor(offset / g); i * g < end; i++) {
      const from = Math.max(offset, i * g),
        to = Math.min(end, (i + 1) * g);
      pushExtent(out, to - from, this.#written[i] === 1 ? 0 : BLOCK_ZERO, 1);
    }
    return Promise.resolve(out);
  }

  info(): Record<string, unknown> {
    return {};
  }

  config(b: Bdev): ConfigEntry {
    return { method: 'bdev_malloc_create', params: { name: b.name, num_blocks: b.numBlocks, block_size: b.blockSize, uuid: b.uuid } };
  }

  // The chunks go with the driver: the GC frees them through the addon's finalizer.
  destruct(): Promise<void> {
    this.#chunks.length = 0;
    return Promise.resolve();
  }
}

export function createMallocBdev(opts: MallocBdevOptions): Bdev {
  const { blockSize, numBlocks } = opts;
  const size = checkGeometry(blockSize, numBlocks);
  const name = opts.name ?? `Malloc${nextIndex++}`;
  return new Bdev({ name, blockSize, numBlocks, readonly: false, uuid: opts.uuid, writeCache: true }, new MallocDriver(size, blockSize));
}
