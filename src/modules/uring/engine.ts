// The uring module's kinds: the io_uring engine (native/uring_engine.h) for the shared JS engine
// of src/modules/aio/aio_engine.ts, and the file bdev of src/modules/aio/aio.ts over it.
import fs from 'node:fs';
import { constants } from 'node:os';
import { native } from '../../native.js';
import { SystemError, UringUnavailableError } from '../../errors.js';
import type { EngineKind } from '../aio/aio_engine.js';
import type { FileBdevKind } from '../aio/aio.js';

const E = constants.errno;

export const URING_ENGINE: EngineKind = {
  label: 'io_uring',
  setupCall: 'io_uring_setup',
  open: (entries, bufs, onComplete) => new (native().UringEngine)(entries, bufs, onComplete),
  codes: () => {
    const k = native().constants.uring;
    return { read: k.OP_READ, write: k.OP_WRITE, flush: k.OP_FSYNC, flushFlags: k.FSYNC_DATASYNC, fua: k.RWF_DSYNC };
  },
};

/** kernel.io_uring_disabled (0: allowed, 1: only for io_uring_group, 2: for nobody), or null where the kernel has none. */
export function ioUringDisabled(): number | null {
  try {
    const v = Number(fs.readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim());
    return Number.isInteger(v) ? v : null;
  } catch {
    return null;
  }
}

/**
 * The typed error for io_uring_setup's OsError (errno negative, message "io_uring_setup: <strerror>"):
 * io_uring missing (ENOSYS) or refused (EPERM) is UringUnavailableError, anything else (ENOMEM
 * for the rings) a SystemError.
 */
export function uringSetupError(e: NodeJS.ErrnoException, entries: number, disabled: number | null = ioUringDisabled()): Error {
  const errno = Math.abs(e.errno ?? E.EIO);
  const reason = e.message.replace(/^io_uring_setup: /, '');
  if (errno === E.ENOSYS || errno === E.EPERM) return new UringUnavailableError(errno, reason, disabled, { cause: e });
  return new SystemError(`io_uring_setup(${entries}) failed: ${reason}`, errno, { cause: e });
}

export const URING_FILES: FileBdevKind = {
  module: 'uring',
  createMethod: 'bdev_uring_create',
  engine: URING_ENGINE,
  maxDepth: () => native().constants.uring.MAX_RING_ENTRIES,
  setupError: uringSetupError,
};
