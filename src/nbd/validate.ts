// Request validation: pure, returns 0 or a positive errno. No I/O, no logging.
import { constants } from 'node:os';
import {
  NBD_CMD,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_PAYLOAD_LEN,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
} from './constants.js';

const E = constants.errno;

export interface ExportLimits {
  /** Transmission flags as sent to this client. */
  flags: number;
  size: number;
  /** Alignment every offset and length must have (1 when the bdev layer handles any). */
  minBlock: number;
  maxPayload: number;
  extended: boolean;
  /** BLOCK_STATUS is allowed: structured replies on and a context selected for this export. */
  blockStatus: boolean;
}

/** Command flags each command may carry; FUA is further checked against SEND_FUA. */
const ALLOWED_FLAGS: Record<number, number> = {
  [NBD_CMD.READ]: NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_DF,
  [NBD_CMD.WRITE]: NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_PAYLOAD_LEN,
  [NBD_CMD.FLUSH]: NBD_CMD_FLAG_FUA,
  [NBD_CMD.TRIM]: NBD_CMD_FLAG_FUA,
  [NBD_CMD.CACHE]: NBD_CMD_FLAG_FUA,
  [NBD_CMD.WRITE_ZEROES]: NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO,
  [NBD_CMD.BLOCK_STATUS]: NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE,
};

/** The advertised flag each command (or command flag) needs. */
function advertised(type: number, flags: number, f: number): boolean {
  switch (type) {
    case NBD_CMD.FLUSH:
      return (f & NBD_FLAG_SEND_FLUSH) !== 0;
    case NBD_CMD.TRIM:
      return (f & (NBD_FLAG_SEND_TRIM | NBD_FLAG_READ_ONLY)) !== 0; // read-only: EPERM below
    case NBD_CMD.WRITE_ZEROES:
      if ((flags & NBD_CMD_FLAG_FAST_ZERO) !== 0 && (f & NBD_FLAG_SEND_FAST_ZERO) === 0) return false;
      return (f & (NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_READ_ONLY)) !== 0;
    case NBD_CMD.READ:
      return (flags & NBD_CMD_FLAG_DF) === 0 || (f & NBD_FLAG_SEND_DF) !== 0;
    case NBD_CMD.CACHE:
      return (f & NBD_FLAG_SEND_CACHE) !== 0;
    default:
      return true;
  }
}

export function validate(type: number, flags: number, offset: number, length: number, x: ExportLimits): number {
  const allowed = ALLOWED_FLAGS[type];
  if (allowed === undefined) return E.EINVAL; // unknown or unsupported command
  if ((flags & ~allowed) !== 0) return E.EINVAL;
  if ((flags & NBD_CMD_FLAG_FUA) !== 0 && (x.flags & NBD_FLAG_SEND_FUA) === 0) return E.EINVAL;
  // PAYLOAD_LEN exists only with extended headers, and there a WRITE must carry it.
  if (type === NBD_CMD.WRITE && x.extended !== ((flags & NBD_CMD_FLAG_PAYLOAD_LEN) !== 0)) return E.EINVAL;
  if (!advertised(type, flags, x.flags)) return E.EINVAL;
  if (type === NBD_CMD.FLUSH) return offset === 0 && length === 0 ? 0 : E.EINVAL;
  if (type === NBD_CMD.BLOCK_STATUS && !x.blockStatus) return E.EINVAL;
  const writes = type === NBD_CMD.WRITE || type === NBD_CMD.TRIM || type === NBD_CMD.WRITE_ZEROES;
  if (writes && (x.flags & NBD_FLAG_READ_ONLY) !== 0) return E.EPERM;
  if (length === 0) return E.EINVAL;
  if (offset > x.size || length > x.size - offset) {
    return type === NBD_CMD.WRITE || type === NBD_CMD.WRITE_ZEROES ? E.ENOSPC : E.EINVAL;
  }
  if (x.minBlock > 1 && (offset % x.minBlock !== 0 || length % x.minBlock !== 0)) return E.EINVAL;
  if ((type === NBD_CMD.READ || type === NBD_CMD.WRITE) && length > x.maxPayload) return E.EINVAL;
  // Payload-free commands carry 32-bit lengths on compact connections; nothing else limits them.
  return 0;
}
