// /dev/nbdN names and what sysfs says about the devices: /sys/block/nbdN/pid exists while a
// device is started, backend holds the identifier its attacher gave, size is in 512-byte sectors.
import fs from 'node:fs';
import { UsageError } from '../../errors.js';

const DEVICE = /^\/dev\/nbd(\d{1,6})$/;

/** The index N of "/dev/nbdN"; anything else is a usage error (SPDK: "illegal nbd device"). */
export function parseNbdDevice(path: string): number {
  const m = DEVICE.exec(path);
  if (m === null) throw new UsageError(`"${path}" is not an nbd device: give /dev/nbdN`);
  return Number(m[1]);
}

export function nbdDevicePath(index: number): string {
  return `/dev/nbd${index}`;
}

function sysfs(index: number, file: string): string | null {
  try {
    return fs.readFileSync(`/sys/block/nbd${index}/${file}`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** Whether the driver is loaded (its devices exist), as opposed to missing altogether. */
export function nbdDriverLoaded(): boolean {
  return fs.existsSync('/sys/module/nbd') || fs.existsSync('/dev/nbd0');
}

export function nbdDeviceExists(index: number): boolean {
  return fs.existsSync(`/sys/block/nbd${index}`);
}

/** A started device has a pid file, from attach until its configuration is dropped. */
export function nbdDeviceStarted(index: number): boolean {
  return sysfs(index, 'pid') !== null;
}

/**
 * The backend identifier given at attach (/sys/block/nbdN/backend), or null when the device has
 * no configuration. It tells our device from one someone attached after ours went away.
 */
export function nbdBackend(index: number): string | null {
  return sysfs(index, 'backend');
}

/** Devices that look free for the ioctl path: not started and of size 0, lowest first. */
export function freeNbdDevices(): number[] {
  let names: string[];
  try {
    names = fs.readdirSync('/sys/block');
  } catch {
    return [];
  }
  return names
    .map((n) => /^nbd(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .filter((i) => !nbdDeviceStarted(i) && sysfs(i, 'size') === '0')
    .sort((a, b) => a - b);
}
