// Detaching any /dev/nbdN, whoever attached it (as "nbd-client -d" does): the kernel sends
// NBD_CMD_DISC on its sockets and fails the device's I/O in flight with EIO. A server of ours
// that served it sees its connections end and forgets the device.
import { NoNbdDriverError, UsageError } from '../../errors.js';
import { native } from '../../native.js';
import { nbdDeviceExists, nbdDeviceStarted, nbdDriverLoaded, parseNbdDevice } from './devices.js';
import { kernelError, kernelInterface } from './link.js';

/** Returns false when the device was not attached (nothing to do). */
export async function detachDevice(device: string, opts: { netlink?: boolean } = {}): Promise<boolean> {
  const index = parseNbdDevice(device);
  if (!nbdDeviceExists(index)) {
    if (!nbdDriverLoaded()) throw new NoNbdDriverError();
    throw new UsageError(`${device} does not exist`);
  }
  if (!nbdDeviceStarted(index)) return false;
  const iface = await kernelInterface(opts.netlink ?? true);
  try {
    if (iface.kind === 'netlink') await native().nbd.disconnect(index);
    else await native().nbd.ioctlDisconnect(device);
  } catch (err) {
    throw kernelError(err, `detaching ${device}`, device);
  }
  return true;
}
