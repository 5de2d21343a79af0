// The AIO module's operations on a target: bdev_aio_create and bdev_aio_rescan, for its RPC
// methods and the embedded Server alike; the uring module's are the same over its kind.
import { AIO_FILES, createFileBdev, fileBdevSize, type FileBdevKind } from './aio.js';
import type { Bdev } from '../../bdev/bdev.js';
import type { ModuleContext } from '../../bdev/module.js';
import { checkName, checkUuid } from '../../bdev/names.js';
import { BdevExistsError } from '../../errors.js';

export interface AioParams {
  filename: string;
  name: string;
  blockSize?: number | undefined;
  readonly?: boolean | undefined;
  uuid?: string | undefined;
  /** Create the file sparse with this size when missing (never over RPC, as SPDK). */
  size?: number | undefined;
  /** An --allow-path root the file must be opened beneath (RPC callers). */
  within?: string | undefined;
}

export function createAio(ctx: ModuleContext, p: AioParams): Promise<Bdev> {
  return createFile(ctx, AIO_FILES, p);
}

export async function createFile(ctx: ModuleContext, kind: FileBdevKind, p: AioParams): Promise<Bdev> {
  checkName(p.name);
  // Before the file is opened (or created): a taken name would only be refused after it.
  if (ctx.bdevs.has(p.name)) throw new BdevExistsError(p.name);
  const b = createFileBdev(kind, {
    filename: p.filename,
    name: p.name,
    blockSize: p.blockSize,
    readonly: p.readonly,
    uuid: checkUuid(p.uuid),
    size: p.size,
    within: p.within,
    queueDepth: ctx.queueDepth,
    log: ctx.log,
  });
  return ctx.register(b);
}

/**
 * bdev_aio_rescan: reads the file's size again. A grown file grows the bdev: attached kernel
 * devices get the new size at once, network clients on their next connection. Shrinking is
 * refused while a virtual bdev claims it, and below what connected clients were told unless
 * forced; a file now empty hot-removes the bdev, as SPDK does.
 */
export function rescanAio(ctx: ModuleContext, name: string, force = false): Promise<void> {
  return rescanFile(ctx, AIO_FILES, name, force);
}

export async function rescanFile(ctx: ModuleContext, kind: FileBdevKind, name: string, force = false): Promise<void> {
  const b = ctx.bdevs.get(name);
  const blocks = Math.floor(fileBdevSize(b, kind) / b.blockSize);
  if (blocks === b.numBlocks) return;
  if (blocks === 0 && b.claim === null) {
    await ctx.bdevs.delete(b.name);
    return;
  }
  await ctx.resizeBdev(b, blocks, force);
}
