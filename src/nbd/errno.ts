// The only place an errno becomes an NBD error value.
import { constants } from 'node:os';
import { EREMOTEIO, ESHUTDOWN } from '../util/errno.js';
import { NBD_CMD_FLAG_DF, NBD_CMD_FLAG_FAST_ZERO, NBD_ERR } from './constants.js';

const E = constants.errno;

const TO_NBD = new Map<number, number>([
  [0, NBD_ERR.SUCCESS],
  [E.EPERM, NBD_ERR.EPERM],
  [E.EROFS, NBD_ERR.EPERM],
  [E.EACCES, NBD_ERR.EPERM],
  [E.EIO, NBD_ERR.EIO],
  [E.ENXIO, NBD_ERR.EIO],
  [E.ENODEV, NBD_ERR.EIO],
  [E.EBADMSG, NBD_ERR.EIO],
  [EREMOTEIO, NBD_ERR.EIO],
  [E.ENOMEM, NBD_ERR.ENOMEM],
  [E.ENOBUFS, NBD_ERR.ENOMEM],
  [E.EINVAL, NBD_ERR.EINVAL],
  [E.ERANGE, NBD_ERR.EINVAL],
  [E.ENOSPC, NBD_ERR.ENOSPC],
  [E.EFBIG, NBD_ERR.ENOSPC],
  [E.EDQUOT, NBD_ERR.ENOSPC],
  [ESHUTDOWN, NBD_ERR.ESHUTDOWN],
]);

/** errno is positive (0 = success). */
export function toNbdError(errno: number, cmdFlags: number): number {
  // These two codes go only to clients that asked for them; everyone else gets EINVAL.
  if (errno === E.EOVERFLOW) return (cmdFlags & NBD_CMD_FLAG_DF) !== 0 ? NBD_ERR.EOVERFLOW : NBD_ERR.EINVAL;
  if (errno === E.ENOTSUP || errno === E.EOPNOTSUPP) return (cmdFlags & NBD_CMD_FLAG_FAST_ZERO) !== 0 ? NBD_ERR.ENOTSUP : NBD_ERR.EINVAL;
  // An unexpected backend errno is an I/O error to the client, not a protocol complaint.
  return TO_NBD.get(errno) ?? NBD_ERR.EIO;
}
