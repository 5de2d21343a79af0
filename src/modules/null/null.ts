// The null bdev (SPDK's bdev_null): a device of a given size with nothing behind it. Writes are
// dropped, reads return zeroes, and every I/O completes at once, so it measures the cost of the
// layers above it: NBD, the bdev layer, the event loop.
import { constants } from 'node:os';
import { Bdev } from '../../bdev/bdev.js';
import { checkGeometry } from '../../bdev/geometry.js';
import {
  ALL_IO_FLAGS,
  BLOCK_HOLE,
  BLOCK_ZERO,
  IoType,
  type BdevDriver,
  type BdevIo,
  type BlockExtent,
  type ConfigEntry,
} from '../../bdev/types.js';

const E = constants.errno;

export interface NullBdevOptions {
  name: string;
  /** A multiple of 512. */
  blockSize: number;
  numBlocks: number;
  uuid?: string | undefined;
}

export class NullDriver implements BdevDriver {
  readonly module = 'null';
  // Nothing is stored, so a write is as durable as it will ever be (FUA), zeroing keeps nothing
  // to allocate (NO_HOLE), and it is always fast (FAST_ZERO).
  readonly ioFlags = ALL_IO_FLAGS;

  // SPDK's null bdev refuses FLUSH and UNMAP; here they succeed, as they truly do on a disk that
  // keeps nothing, so NBD clients (the kernel's trim, nbdcopy's flush) need no special case.
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
        (io.buf as Buffer).fill(0, 0, io.length);
        break;
      case IoType.Write:
      case IoType.Flush:
      case IoType.Unmap:
      case IoType.WriteZeroes:
      case IoType.Reset:
        break;
      default:
        io.complete(-E.ENOTSUP);
        return;
    }
    io.complete(0);
  }

  // Allocated nowhere, zeroes everywhere: one extent answers for any range.
  blockStatus(_offset: number, length: number): Promise<BlockExtent[]> {
    return Promise.resolve([{ length, flags: BLOCK_HOLE | BLOCK_ZERO, depth: 0 }]);
  }

  info(): Record<string, unknown> {
    return {};
  }

  config(b: Bdev): ConfigEntry {
    return { method: 'bdev_null_create', params: { name: b.name, num_blocks: b.numBlocks, block_size: b.blockSize, uuid: b.uuid } };
  }

  destruct(): Promise<void> {
    return Promise.resolve();
  }
}

/** An unregistered null bdev. */
export function createNullBdev(opts: NullBdevOptions): Bdev {
  checkGeometry(opts.blockSize, opts.numBlocks);
  return new Bdev(
    {
      name: opts.name,
      blockSize: opts.blockSize,
      numBlocks: opts.numBlocks,
      readonly: false,
      uuid: opts.uuid,
      writeCache: false,
    },
    new NullDriver(),
  );
}
