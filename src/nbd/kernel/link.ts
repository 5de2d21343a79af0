// Which kernel interface attaches devices here, and what a failed kernel call means to the user.
// The native calls themselves are in native/nbd_attach.cc.
import { constants } from 'node:os';
import { AionbdError, NbdDeviceBusyError, NbdKernelError, NbdNotPermittedError, NoNbdDriverError } from '../../errors.js';
import { native } from '../../native.js';
import { strerror } from '../../util/strerror.js';
import { nbdDriverLoaded } from './devices.js';

const { EPERM, ENOENT, EACCES, EBUSY } = constants.errno;

export interface NetlinkFamily {
  id: number;
  mcastGroup: number;
}

export type KernelInterface = { kind: 'netlink'; family: NetlinkFamily } | { kind: 'ioctl' };

let family: NetlinkFamily | null = null;

/** The positive errno of a failed native call, or null for anything else (a bug: rethrown). */
export function errnoOf(err: unknown): number | null {
  if (typeof err !== 'object' || err === null || !('syscall' in err) || !('errno' in err)) return null;
  const e = (err as { errno: unknown }).errno;
  return typeof e === 'number' ? Math.abs(e) : null;
}

/** Turns a failed kernel call into the one-line error the user acts on. */
export function kernelError(err: unknown, what: string, device: string | null): Error {
  if (err instanceof AionbdError) return err;
  const e = errnoOf(err);
  if (e === null) return err instanceof Error ? err : new Error(String(err));
  if (e === EPERM || e === EACCES) return new NbdNotPermittedError(what);
  if (e === EBUSY) return new NbdDeviceBusyError(device ?? 'the nbd device');
  if (e === ENOENT && !nbdDriverLoaded()) return new NoNbdDriverError();
  return new NbdKernelError(`${what}: ${strerror(e)} (see the kernel log: dmesg | grep nbd)`, e);
}

/**
 * Netlink where the kernel has the nbd family (Linux 4.12 on), else ioctl where the driver is
 * loaded, else NoNbdDriverError. Asking for the family makes the kernel load the module if it can.
 */
export async function kernelInterface(preferNetlink = true): Promise<KernelInterface> {
  if (!preferNetlink) {
    if (!nbdDriverLoaded()) throw new NoNbdDriverError();
    return { kind: 'ioctl' };
  }
  if (family !== null) return { kind: 'netlink', family };
  try {
    family = await native().nbd.family();
    return { kind: 'netlink', family };
  } catch (err) {
    if (errnoOf(err) !== ENOENT) throw kernelError(err, 'looking up the nbd netlink family', null);
    if (!nbdDriverLoaded()) throw new NoNbdDriverError();
    return { kind: 'ioctl' };
  }
}
