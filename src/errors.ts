// Every error the product raises on purpose, each with a stable code. An expected failure
// reaches the user as one line (its message); anything not an AionbdError is a bug and keeps
// its stack.
import { constants } from 'node:os';

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

/** A system call failed while setting something up; carries the errno and the path or object. */
export class SystemError extends AionbdError {
  readonly code = 'AIONBD_SYSTEM';
  override readonly errno: number;
  constructor(message: string, errno: number, options?: ErrorOptions) {
    super(message, options);
    this.errno = errno;
  }
}

export class AioMaxNrError extends AionbdError {
  readonly code = 'AIONBD_AIO_MAX_NR';
  override readonly errno = E.EAGAIN;
  constructor(readonly requested: number, readonly aioNr: number | null, readonly aioMaxNr: number | null) {
    const now = aioNr !== null && aioMaxNr !== null ? ` (aio-nr ${aioNr} of fs.aio-max-nr ${aioMaxNr} in use)` : '';
    const want = aioMaxNr !== null ? aioMaxNr + Math.max(requested * 16, 65536) : 1048576;
    super(`io_setup(${requested}) failed: the kernel's AIO context limit is exhausted${now}; ` +
      `raise it with "sysctl -w fs.aio-max-nr=${want}" or use a smaller --queue-depth`);
  }
}

export class BdevExistsError extends AionbdError {
  readonly code = 'AIONBD_BDEV_EXISTS';
  override readonly errno = E.EEXIST;
  constructor(readonly bdev: string) { super(`bdev "${bdev}" already exists`); }
}

export class BdevNotFoundError extends AionbdError {
  readonly code = 'AIONBD_BDEV_NOT_FOUND';
  override readonly errno = E.ENODEV;
  constructor(readonly bdev: string) { super(`bdev "${bdev}" does not exist`); }
}

export class InvalidBdevError extends AionbdError {
  readonly code = 'AIONBD_INVALID_BDEV';
  override readonly errno = E.EINVAL;
}

export class ExportExistsError extends AionbdError {
  readonly code = 'AIONBD_EXPORT_EXISTS';
  override readonly errno = E.EEXIST;
  constructor(readonly exportName: string) { super(`export "${exportName}" already exists`); }
}

export class ListenError extends AionbdError {
  readonly code = 'AIONBD_LISTEN';
  override readonly errno: number | undefined;
  constructor(address: string, cause: NodeJS.ErrnoException) {
    const why = cause.code === 'EADDRINUSE' ? 'address already in use'
      : cause.code === 'EACCES' ? 'permission denied'
      : cause.code === 'EADDRNOTAVAIL' ? 'address not available on this machine'
      : cause.message;
    super(`cannot listen on ${address}: ${why}`, { cause });
    this.errno = typeof cause.errno === 'number' ? -cause.errno : undefined;
  }
}

export class ServerClosedError extends AionbdError {
  readonly code = 'AIONBD_SERVER_CLOSED';
  override readonly errno = 108; // ESHUTDOWN on Linux; os.constants.errno does not list it
  constructor() { super('the server is closed'); }
}

/** A module or caller broke the bdev I/O contract: a bug, reported loudly. */
export class BdevIoMisuseError extends Error {
  readonly code = 'AIONBD_BDEV_IO_MISUSE';
  constructor(bdev: string, what: string) { super(`bdev "${bdev}": I/O ${what}`); this.name = 'BdevIoMisuseError'; }
}

/** Describes an errno from a failed open() or similar, in words a user acts on. */
export function describeOpenError(path: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT': return `${path}: no such file or directory`;
    case 'EACCES': case 'EPERM': return `${path}: permission denied`;
    case 'EISDIR': return `${path}: is a directory`;
    case 'EROFS': return `${path}: read-only file system (use readonly)`;
    case 'EBUSY': return `${path}: device or resource busy`;
    default: return `${path}: ${err.message}`;
  }
}
