// Request validation: pure, returns 0 or a positive errno. No I/O, no logging.
import { constants } from 'node:os';
import {
  NBD_CMD, NBD_CMD_FLAG_FUA, NBD_CMD_FLAG_NO_HOLE, NBD_FLAG_READ_ONLY, NBD_FLAG_SEND_FLUSH, NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM, NBD_FLAG_SEND_WRITE_ZEROES,
} from './constants.js';

const E = constants.errno;

export interface ExportLimits {
  flags: number;
  size: number;
  minBlock: number;
  maxPayload: number;
}

/** Command flags each command may carry (FUA is checked against SEND_FUA separately). */
const ALLOWED_FLAGS: Record<number, number> = {
  [NBD_CMD.READ]: NBD_CMD_FLAG_FUA,
  [NBD_CMD.WRITE]: NBD_CMD_FLAG_FUA,
  [NBD_CMD.FLUSH]: NBD_CMD_FLAG_FUA,
  [NBD_CMD.TRIM]: NBD_CMD_FLAG_FUA,
  [NBD_CMD.WRITE_ZEROES]: NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE,
};

export function validate(type: number, flags: number, offset: number, length: number, x: ExportLimits): number {
  const allowed = ALLOWED_FLAGS[type];
  if (allowed === undefined) return E.EINVAL; // unknown or unsupported command
  if ((flags & ~allowed) !== 0) return E.EINVAL;
  if ((flags & NBD_CMD_FLAG_FUA) !== 0 && (x.flags & NBD_FLAG_SEND_FUA) === 0) return E.EINVAL;
  switch (type) {
    case NBD_CMD.FLUSH:
      if ((x.flags & NBD_FLAG_SEND_FLUSH) === 0) return E.EINVAL;
      return offset === 0 && length === 0 ? 0 : E.EINVAL;
    case NBD_CMD.TRIM:
      if ((x.flags & NBD_FLAG_SEND_TRIM) === 0 && (x.flags & NBD_FLAG_READ_ONLY) === 0) return E.EINVAL;
      break;
    case NBD_CMD.WRITE_ZEROES:
      if ((x.flags & NBD_FLAG_SEND_WRITE_ZEROES) === 0 && (x.flags & NBD_FLAG_READ_ONLY) === 0) return E.EINVAL;
      break;
    default:
      break;
  }
  const writes = type === NBD_CMD.WRITE || type === NBD_CMD.TRIM || type === NBD_CMD.WRITE_ZEROES;
  if (writes && (x.flags & NBD_FLAG_READ_ONLY) !== 0) return E.EPERM;
  if (length === 0) return E.EINVAL;
  if (offset > x.size || length > x.size - offset) {
    return type === NBD_CMD.WRITE || type === NBD_CMD.WRITE_ZEROES ? E.ENOSPC : E.EINVAL;
  }
  if (offset % x.minBlock !== 0 || length % x.minBlock !== 0) return E.EINVAL;
  if ((type === NBD_CMD.READ || type === NBD_CMD.WRITE) && length > x.maxPayload) return E.EINVAL;
  return 0;
}
