// The uring bdev: a regular file or a block device served through io_uring. It is the AIO
// bdev's driver (O_DIRECT file opening, geometry, TRIM/zeroing/seek off the main thread, block
// status, rescan) over the process's io_uring engine instead of its Linux AIO engine.
import type { Bdev } from '../../bdev/bdev.js';
import { createFileBdev, type AioBdevOptions } from '../aio/aio.js';
import { URING_FILES } from './engine.js';

export type UringBdevOptions = AioBdevOptions;

/**
 * Opens (or creates, with `size`) the file and builds a uring bdev over it; a failure leaves
 * nothing it created. Throws UringUnavailableError where the kernel has no io_uring or refuses it.
 */
export function createUringBdev(opts: UringBdevOptions): Bdev {
  return createFileBdev(URING_FILES, opts);
}
