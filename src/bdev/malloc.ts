// The malloc bdev: a RAM disk, zeroed at creation. Memory comes from the addon in aligned
// chunks (one ArrayBuffer is limited to 2 GiB), so a bdev may be larger than one chunk.
import { constants } from 'node:os';
import { InvalidBdevError } from '../errors.js';
import { native } from '../native.js';
import { Bdev } from './bdev.js';
import { BUFFER_ALIGN } from './buffers.js';
import { IoType, type BdevDriver, type BdevIo, type Complete, type ConfigEntry } from './types.js';

const E = constants.errno;
const CHUNK = 2 ** 30;

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
  readonly #chunks: Buffer[] = [];

  constructor(readonly size: number) {
    for (let left = size; left > 0; left -= CHUNK) {
      const b = Buffer.from(native().allocAligned(Math.min(left, CHUNK), BUFFER_ALIGN));
      b.fill(0);
      this.#chunks.push(b);
    }
  }

  supports(type: IoType): boolean {
    return type === IoType.Read || type === IoType.Write || type === IoType.Flush || type === IoType.Unmap
      || type === IoType.WriteZeroes || type === IoType.Reset;
  }

  // Completes at once: the bdev layer defers the callback out of submit().
  submit(io: BdevIo, complete: Complete): void {
    switch (io.type) {
      case IoType.Read: this.#copy(io.offset, io.length, io.buf as Buffer, false); break;
      case IoType.Write: this.#copy(io.offset, io.length, io.buf as Buffer, true); break;
      case IoType.Unmap: case IoType.WriteZeroes: this.#copy(io.offset, io.length, null, true); break;
      case IoType.Flush: case IoType.Reset: break;
      default: complete(io, -E.ENOTSUP); return;
    }
    complete(io, 0);
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

  info(): Record<string, unknown> { return {}; }

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
  if (!Number.isInteger(blockSize) || blockSize < 512 || blockSize % 512 !== 0) {
    throw new InvalidBdevError(`block size ${blockSize} must be a multiple of 512`);
  }
  if (!Number.isSafeInteger(numBlocks) || numBlocks <= 0) throw new InvalidBdevError(`number of blocks ${numBlocks} must be positive`);
  const size = blockSize * numBlocks;
  if (!Number.isSafeInteger(size)) throw new InvalidBdevError(`${numBlocks} blocks of ${blockSize} bytes is too large`);
  const name = opts.name ?? `Malloc${nextIndex++}`;
  return new Bdev({ name, blockSize, numBlocks, readonly: false, uuid: opts.uuid, writeCache: true }, new MallocDriver(size));
}
