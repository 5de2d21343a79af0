// Every error the product raises on purpose, each with a stable code. An expected failure
// reaches the user as one line (its message); anything not an AionbdError is a bug and keeps
// its stack.
import { constants } from 'node:os';
import { ESHUTDOWN } from './util/errno.js';

const E = constants.errno;

export abstract class AionbdError extends Error {
  abstract readonly code: `AIONBD_${string}`;
  readonly exitCode: 1 | 2 = 1;
  /** A positive errno when one describes the failure (an RPC error then uses -errno, as SPDK does). */
  readonly errno: number | undefined = undefined;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class UsageError extends AionbdError {
  readonly code = 'AIONBD_USAGE';
  override readonly exitCode = 2;
}

export class NativeAddonError extends AionbdError {
  readonly code = 'AIONBD_NATIVE_ADDON';
  constructor(attempts: string[]) {
    super(`the native addon is not built (${attempts.join('; ')}): run "npm install" (or "npm run build") in the aionbd package`);
  }
}

/**
 * A failure the caller describes with its own message and the errno it got: a system call
 * (SystemError), a librados/librbd call (RbdError), the kernel's nbd driver (NbdKernelError).
 * The subclass gives the code.
 */
export abstract class ErrnoError extends AionbdError {
  override readonly errno: number;
  constructor(message: string, errno: number, options?: ErrorOptions) {
    super(message, options);
    this.errno = errno;
  }
}

/** A system call failed while setting something up; the message names the path or object. */
export class SystemError extends ErrnoError {
  readonly code = 'AIONBD_SYSTEM';
}

export class AioMaxNrError extends AionbdError {
  readonly code = 'AIONBD_AIO_MAX_NR';
  override readonly errno = E.EAGAIN;
  constructor(
    readonly requested: number,
    readonly aioNr: number | null,
    readonly aioMaxNr: number | null,
  ) {
    const now = aioNr !== null && aioMaxNr !== null ? ` (aio-nr ${aioNr} of fs.aio-max-nr ${aioMaxNr} in use)` : '';
    const want = aioMaxNr !== null ? aioMaxNr + Math.max(requested * 16, 65536) : 1048576;
    super(
      `io_setup(${requested}) failed: the kernel's AIO context limit is exhausted${now}; ` +
        `raise it with "sysctl -w fs.aio-max-nr=${want}" or use a smaller --queue-depth`,
    );
  }
}

/**
 * io_uring_setup was refused for the process's io_uring engine (made by the first uring bdev):
 * a kernel without io_uring (ENOSYS), or one where kernel.io_uring_disabled (or a seccomp
 * filter) forbids it (EPERM).
 */
export class UringUnavailableError extends AionbdError {
  readonly code = 'AIONBD_URING_UNAVAILABLE';
  override readonly errno: number;
  constructor(
    errno: number,
    reason: string,
    /** kernel.io_uring_disabled, or null where the kernel has no such setting. */
    readonly disabled: number | null,
    options?: ErrorOptions,
  ) {
    const setting = disabled !== null ? `kernel.io_uring_disabled=${disabled}` : 'this kernel has no kernel.io_uring_disabled';
    super(`io_uring is not available: ${reason} (${setting})`, options);
    this.errno = errno;
  }
}

export class BdevExistsError extends AionbdError {
  readonly code = 'AIONBD_BDEV_EXISTS';
  override readonly errno = E.EEXIST;
  constructor(readonly bdev: string) {
    super(`bdev "${bdev}" already exists`);
  }
}

export class BdevNotFoundError extends AionbdError {
  readonly code = 'AIONBD_BDEV_NOT_FOUND';
  override readonly errno = E.ENODEV;
  constructor(readonly bdev: string) {
    super(`bdev "${bdev}" does not exist`);
  }
}

export class InvalidBdevError extends AionbdError {
  readonly code = 'AIONBD_INVALID_BDEV';
  override readonly errno = E.EINVAL;
}

export class ExportExistsError extends AionbdError {
  readonly code = 'AIONBD_EXPORT_EXISTS';
  override readonly errno = E.EEXIST;
  constructor(readonly exportName: string) {
    super(`export "${exportName}" already exists`);
  }
}

export class ListenError extends AionbdError {
  readonly code = 'AIONBD_LISTEN';
  override readonly errno: number | undefined;
  /** `why` replaces the words made from the errno where the caller knows more (a missing directory). */
  constructor(address: string, cause: NodeJS.ErrnoException, why: string = describeListenErrno(cause)) {
    super(`cannot listen on ${address}: ${why}`, { cause });
    this.errno = typeof cause.errno === 'number' ? -cause.errno : undefined;
  }
}

function describeListenErrno(cause: NodeJS.ErrnoException): string {
  switch (cause.code) {
    case 'EADDRINUSE':
      return 'address already in use';
    case 'EACCES':
      return 'permission denied';
    case 'EADDRNOTAVAIL':
      return 'address not available on this machine';
    default:
      return cause.message;
  }
}

export class ServerClosedError extends AionbdError {
  readonly code = 'AIONBD_SERVER_CLOSED';
  override readonly errno = ESHUTDOWN;
  constructor() {
    super('the server is closed');
  }
}

/** A virtual bdev holds this bdev (SPDK's exclusive_write claim): it cannot be claimed or exported again. */
export class BdevClaimedError extends AionbdError {
  readonly code = 'AIONBD_BDEV_CLAIMED';
  override readonly errno = E.EPERM;
  constructor(
    readonly bdev: string,
    readonly module: string,
    readonly by: string,
  ) {
    super(`bdev "${bdev}" is claimed by the ${module} module (${by})`);
  }
}

/** The bdev cannot be deleted or shrunk while something uses it. */
export class BdevInUseError extends AionbdError {
  readonly code = 'AIONBD_BDEV_IN_USE';
  override readonly errno = E.EBUSY;
  constructor(
    readonly bdev: string,
    why: string,
  ) {
    super(`bdev "${bdev}" is in use: ${why}`);
  }
}

/** A module-specific method named a bdev of another module (bdev_aio_delete on a malloc bdev). */
export class BdevWrongModuleError extends AionbdError {
  readonly code = 'AIONBD_BDEV_WRONG_MODULE';
  override readonly errno = E.ENODEV;
  constructor(
    readonly bdev: string,
    readonly module: string,
    readonly wanted: string,
  ) {
    super(`bdev "${bdev}" is a ${module} bdev, not a ${wanted} bdev`);
  }
}

export class ExportNotFoundError extends AionbdError {
  readonly code = 'AIONBD_EXPORT_NOT_FOUND';
  override readonly errno = E.ENODEV;
  constructor(readonly exportName: string) {
    super(`export "${exportName}" does not exist`);
  }
}

/** A path named over RPC lies outside every --allow-path root, or is not a file or block device. */
export class PathNotAllowedError extends AionbdError {
  readonly code = 'AIONBD_PATH_NOT_ALLOWED';
  override readonly errno = E.EACCES;
}

/** A file named over RPC does not exist (bdev_aio_create never creates one, as SPDK). */
export class PathNotFoundError extends AionbdError {
  readonly code = 'AIONBD_PATH_NOT_FOUND';
  override readonly errno = E.ENOENT;
  constructor(readonly path: string) {
    super(`${path}: no such file or directory`);
  }
}

/** A parameter value the module does not support (SPDK answers -ENOTSUP). */
export class UnsupportedError extends AionbdError {
  readonly code = 'AIONBD_UNSUPPORTED';
  override readonly errno = E.EOPNOTSUPP;
}

export class LvstoreNotFoundError extends AionbdError {
  readonly code = 'AIONBD_LVSTORE_NOT_FOUND';
  override readonly errno = E.ENODEV;
  constructor(readonly lvstore: string) {
    super(`lvstore "${lvstore}" does not exist`);
  }
}

export class LvstoreExistsError extends AionbdError {
  readonly code = 'AIONBD_LVSTORE_EXISTS';
  override readonly errno = E.EEXIST;
  constructor(readonly lvstore: string) {
    super(`an lvstore named "${lvstore}" already exists`);
  }
}

/** An lvstore has too few free clusters. */
export class NoSpaceError extends AionbdError {
  readonly code = 'AIONBD_NO_SPACE';
  override readonly errno = E.ENOSPC;
}

/** A write-like change (write, resize) to a read-only lvol: a snapshot, or one set read-only. */
export class LvolReadOnlyError extends AionbdError {
  readonly code = 'AIONBD_LVOL_READ_ONLY';
  override readonly errno = E.EPERM;
  constructor(
    readonly lvol: string,
    what: string,
  ) {
    super(`lvol "${lvol}" is read-only: ${what}`);
  }
}

/** A config file (save_config format) that cannot be applied. */
export class ConfigError extends AionbdError {
  readonly code = 'AIONBD_CONFIG';
  override readonly errno = E.EINVAL;
}

/** JSON-RPC params that do not match the method's schema (code -32602). */
export class RpcInvalidParamsError extends AionbdError {
  readonly code = 'AIONBD_RPC_INVALID_PARAMS';
  override readonly errno = E.EINVAL;
}

/** The JSON-RPC server answered with an error; `aionbd rpc` prints its message. */
export class RpcError extends AionbdError {
  readonly code = 'AIONBD_RPC';
  constructor(
    message: string,
    readonly rpcCode: number,
    readonly data: unknown,
  ) {
    super(message);
  }
}

/** The JSON-RPC socket cannot be reached (no server, wrong path, timeout). */
export class RpcConnectError extends AionbdError {
  readonly code = 'AIONBD_RPC_CONNECT';
}

/** Attaching or detaching /dev/nbdX needs CAP_SYS_ADMIN. */
export class NbdNotPermittedError extends AionbdError {
  readonly code = 'AIONBD_NBD_NOT_ROOT';
  override readonly errno = E.EPERM;
  constructor(what: string) {
    super(`${what} needs root (CAP_SYS_ADMIN): run it as root`);
  }
}

export class NoNbdDriverError extends AionbdError {
  readonly code = 'AIONBD_NO_NBD_DRIVER';
  override readonly errno = E.ENODEV;
  constructor() {
    super('the kernel has no nbd driver: run "modprobe nbd" as root');
  }
}

export class NoFreeNbdDeviceError extends AionbdError {
  readonly code = 'AIONBD_NBD_NO_FREE_DEVICE';
  override readonly errno = E.ENODEV;
  constructor() {
    super(
      'no free /dev/nbdX: detach one ("aionbd detach /dev/nbdN"), or reload the driver with more ("modprobe -r nbd && modprobe nbd nbds_max=64")',
    );
  }
}

export class NbdDeviceBusyError extends AionbdError {
  readonly code = 'AIONBD_NBD_DEVICE_BUSY';
  override readonly errno = E.EBUSY;
  constructor(readonly device: string) {
    super(`${device} is busy: it is attached already, or something holds it open`);
  }
}

/** nbd_stop_disk / nbd_get_disks named a device this server did not attach. */
export class NbdDiskNotFoundError extends AionbdError {
  readonly code = 'AIONBD_NBD_DISK_NOT_FOUND';
  override readonly errno = E.ENODEV;
  constructor(readonly device: string) {
    super(`${device} is not attached by this server`);
  }
}

/** The kernel refused an attach, detach or reconnect for a reason without a row above. */
export class NbdKernelError extends ErrnoError {
  readonly code = 'AIONBD_NBD_KERNEL';
}

/** A module or caller broke the bdev I/O contract: a bug, reported loudly. */
export class BdevIoMisuseError extends Error {
  readonly code = 'AIONBD_BDEV_IO_MISUSE';
  constructor(bdev: string, what: string) {
    super(`bdev "${bdev}": I/O ${what}`);
    this.name = 'BdevIoMisuseError';
  }
}

/** Describes an errno from a failed open() or similar, in words a user acts on. */
export function describeOpenError(path: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return `${path}: no such file or directory`;
    case 'EACCES':
    case 'EPERM':
      return `${path}: permission denied`;
    case 'EISDIR':
      return `${path}: is a directory`;
    case 'EROFS':
      return `${path}: read-only file system (use readonly)`;
    case 'EBUSY':
      return `${path}: device or resource busy`;
    default:
      return `${path}: ${err.message}`;
  }
}
