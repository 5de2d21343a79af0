// An export: a bdev under a name, with the transmission flags computed once from what the bdev
// can do (nbdkit's "ask every can_* once" rule).
import type { Bdev } from '../bdev/bdev.js';
import { IoType } from '../bdev/types.js';
import {
  DEFAULT_PREFERRED_BLOCK, NBD_FLAG_CAN_MULTI_CONN, NBD_FLAG_HAS_FLAGS, NBD_FLAG_READ_ONLY, NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_DF, NBD_FLAG_SEND_FAST_ZERO, NBD_FLAG_SEND_FLUSH, NBD_FLAG_SEND_FUA, NBD_FLAG_SEND_TRIM,
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
  readonly size: number;
  readonly minBlock: number;
  readonly preferredBlock: number;
  readonly stats: ExportStats;

  constructor(bdev: Bdev, opts: ExportOptions = {}) {
    this.name = opts.name ?? bdev.name;
    this.bdev = bdev;
    this.readonly = (opts.readonly ?? false) || bdev.readonly;
    this.description = opts.description ?? '';
    this.stats = opts.stats ?? { connections: 0 };
    this.size = bdev.sizeBytes;
    // Any offset and length works: the unaligned adapter bounces what the bdev cannot take.
    this.minBlock = 1;
    this.preferredBlock = Math.max(DEFAULT_PREFERRED_BLOCK, bdev.blockSize);
    let f = NBD_FLAG_HAS_FLAGS;
    if (this.readonly) f |= NBD_FLAG_READ_ONLY;
    if (bdev.supports(IoType.Flush)) f |= NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA;
    if (!this.readonly && bdev.supports(IoType.Unmap)) f |= NBD_FLAG_SEND_TRIM;
    if (!this.readonly && bdev.supports(IoType.WriteZeroes)) f |= NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
    // CACHE is a prefetch hint: with O_DIRECT there is no cache of ours to warm, so it is
    // validated and acknowledged, which the spec allows.
    f |= NBD_FLAG_SEND_CACHE;
    // Every connection shares one fd and no cache of ours, so a FLUSH on one covers all.
    f |= NBD_FLAG_CAN_MULTI_CONN;
    this.flags = f;
  }

  /** DF means something only to clients that negotiated structured replies. */
  flagsFor(structured: boolean): number {
    return structured ? this.flags | NBD_FLAG_SEND_DF : this.flags;
  }
}
