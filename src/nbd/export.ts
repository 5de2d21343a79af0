// An export: a bdev under a name, with the transmission flags computed once from what the bdev
// can do (nbdkit's "ask every can_* once" rule), and the size its clients are told. A network
// export keeps that size: when the bdev is resized, the server makes a new export, which the
// next connections see. A kernel device's export follows the bdev (setSize), because the kernel
// is told the new size at once.
import type { Bdev } from '../bdev/bdev.js';
import { knowsDepth } from '../bdev/block_status.js';
import { IoFlag, IoType } from '../bdev/types.js';
import {
  DEFAULT_PREFERRED_BLOCK,
  META_BASE_ALLOCATION,
  META_QEMU_ALLOCATION_DEPTH,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
} from './constants.js';

export interface ExportOptions {
  name?: string;
  readonly?: boolean;
  description?: string;
  /** Counters to share with an earlier Export of the same name (one remade after a resize). */
  stats?: ExportStats;
}

/** Live counters of an export, read by the metrics endpoint. */
export interface ExportStats {
  /** Clients in transmission phase on it now. */
  connections: number;
}

export class Export {
  readonly name: string;
  readonly bdev: Bdev;
  readonly readonly: boolean;
  readonly description: string;
  /** Transmission flags for a client with simple replies (see flagsFor). */
  readonly flags: number;
  readonly minBlock: number;
  readonly preferredBlock: number;
  readonly stats: ExportStats;
  /** The metadata contexts a client may select for it. */
  readonly metaContexts: readonly string[];
  #size: number;
  readonly #sizeListeners: ((size: number) => void)[] = [];

  constructor(bdev: Bdev, opts: ExportOptions = {}) {
    this.name = opts.name ?? bdev.name;
    this.bdev = bdev;
    this.readonly = (opts.readonly ?? false) || bdev.readonly;
    this.description = opts.description ?? '';
    this.stats = opts.stats ?? { connections: 0 };
    this.#size = bdev.sizeBytes;
    this.metaContexts = knowsDepth(bdev) ? [META_BASE_ALLOCATION, META_QEMU_ALLOCATION_DEPTH] : [META_BASE_ALLOCATION];
    // Any offset and length works: the unaligned adapter bounces what the bdev cannot take.
    this.minBlock = 1;
    this.preferredBlock = Math.max(DEFAULT_PREFERRED_BLOCK, bdev.blockSize);
    let f = NBD_FLAG_HAS_FLAGS;
    if (this.readonly) f |= NBD_FLAG_READ_ONLY;
    // Each command flag only when the bdev declares it: the bdev layer refuses the others.
    if (bdev.supports(IoType.Flush)) f |= NBD_FLAG_SEND_FLUSH;
    if (bdev.supportsFlags(IoFlag.Fua)) f |= NBD_FLAG_SEND_FUA;
    if (!this.readonly && bdev.supports(IoType.Unmap)) f |= NBD_FLAG_SEND_TRIM;
    // NBD requires NO_HOLE wherever WRITE_ZEROES is offered.
    if (!this.readonly && bdev.supports(IoType.WriteZeroes) && bdev.supportsFlags(IoFlag.NoHole)) {
      f |= NBD_FLAG_SEND_WRITE_ZEROES;
      if (bdev.supportsFlags(IoFlag.FastZero)) f |= NBD_FLAG_SEND_FAST_ZERO;
    }
    // CACHE is a prefetch hint: with O_DIRECT there is no cache of ours to warm, so it is
    // validated and acknowledged, which the spec allows.
    f |= NBD_FLAG_SEND_CACHE;
    // Every connection shares one fd and no cache of ours, so a FLUSH on one covers all.
    f |= NBD_FLAG_CAN_MULTI_CONN;
    this.flags = f;
  }

  /** The size clients of this export are told (and held to). */
  get size(): number {
    return this.#size;
  }

  /** A kernel device's export follows its bdev: its connections accept the new range at once. */
  setSize(size: number): void {
    if (size === this.#size) return;
    this.#size = size;
    for (const fn of [...this.#sizeListeners]) fn(size);
  }

  /** Runs fn when setSize() changes the size; returns the unsubscribe function. */
  onSize(fn: (size: number) => void): () => void {
    this.#sizeListeners.push(fn);
    return () => {
      const i = this.#sizeListeners.indexOf(fn);
      if (i >= 0) this.#sizeListeners.splice(i, 1);
    };
  }

  /** DF means something only to clients that negotiated structured replies. */
  flagsFor(structured: boolean): number {
    return structured ? this.flags | NBD_FLAG_SEND_DF : this.flags;
  }
}
