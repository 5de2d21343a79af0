// The uring module's operations on a target: bdev_uring_create and bdev_uring_rescan, for its
// RPC methods and the embedded Server alike (the AIO module's, over the io_uring kind).
import type { Bdev } from '../../bdev/bdev.js';
import type { ModuleContext } from '../../bdev/module.js';
import { createFile, rescanFile, type AioParams } from '../aio/ops.js';
import { URING_FILES } from './engine.js';

export type UringParams = AioParams;

export function createUring(ctx: ModuleContext, p: UringParams): Promise<Bdev> {
  return createFile(ctx, URING_FILES, p);
}

/** bdev_uring_rescan: as bdev_aio_rescan (a grown file grows the bdev, an empty one removes it). */
export function rescanUring(ctx: ModuleContext, name: string, force = false): Promise<void> {
  return rescanFile(ctx, URING_FILES, name, force);
}
