// The RBD module's errors, each with a stable code (listed in the README's error table).
import { constants } from 'node:os';
import { AionbdError, ErrnoError } from '../../errors.js';

const E = constants.errno;

/** This build has no RBD support, or librbd cannot be opened: the message names the package. */
export class RbdUnavailableError extends AionbdError {
  readonly code = 'AIONBD_RBD_UNAVAILABLE';
  override readonly errno = E.EOPNOTSUPP;
}

/** A librados or librbd call failed; the message names the call, what it was about and why. */
export class RbdError extends ErrnoError {
  readonly code = 'AIONBD_RBD';
}

export class RbdClusterNotFoundError extends AionbdError {
  readonly code = 'AIONBD_RBD_CLUSTER_NOT_FOUND';
  override readonly errno = E.ENOENT;
  constructor(readonly cluster: string) {
    super(`no RBD cluster "${cluster}" is registered (bdev_rbd_register_cluster)`);
  }
}

export class RbdClusterExistsError extends AionbdError {
  readonly code = 'AIONBD_RBD_CLUSTER_EXISTS';
  override readonly errno = E.EEXIST;
  constructor(readonly cluster: string) {
    super(`an RBD cluster named "${cluster}" is registered already`);
  }
}

export class RbdClusterInUseError extends AionbdError {
  readonly code = 'AIONBD_RBD_CLUSTER_IN_USE';
  override readonly errno = E.EBUSY;
  constructor(
    readonly cluster: string,
    bdevs: string[],
  ) {
    super(`RBD cluster "${cluster}" is in use by ${bdevs.map((b) => `"${b}"`).join(', ')}: delete those bdevs first`);
  }
}
