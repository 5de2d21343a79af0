// The kernel devices one server has attached: what nbd_start_disk, nbd_stop_disk and
// nbd_get_disks work on, and what the server detaches before it shuts down.
import type { Bdev } from '../../bdev/bdev.js';
import { NbdDiskNotFoundError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Export } from '../export.js';
import type { NbdServer } from '../server.js';
import { parseNbdDevice } from './devices.js';
import { attachDisk, type KernelDisk, type KernelDiskOptions } from './disk.js';

/** nbd_get_disks' shape (SPDK's). */
export interface DiskInfo {
  nbd_device: string;
  bdev_name: string;
}

export class KernelDisks {
  readonly #disks = new Set<KernelDisk>();

  constructor(
    private readonly server: NbdServer,
    private readonly log: Logger,
  ) {}

  /** Attaches `x`; the disk leaves the list by itself once the kernel has let go of it. */
  async start(x: Export, opts: KernelDiskOptions = {}): Promise<KernelDisk> {
    const d = await attachDisk(this.server, x, opts, this.log);
    this.#disks.add(d);
    void d.ended.then(() => {
      this.#disks.delete(d);
    });
    return d;
  }

  /** Detaches the device; resolves once the kernel has let go of it. */
  async stop(device: string): Promise<void> {
    parseNbdDevice(device);
    const d = this.#find(device);
    if (d === undefined) throw new NbdDiskNotFoundError(device);
    await d.stop();
  }

  list(device?: string): DiskInfo[] {
    if (device !== undefined) {
      parseNbdDevice(device);
      const d = this.#find(device);
      if (d === undefined) throw new NbdDiskNotFoundError(device);
      return [{ nbd_device: d.device, bdev_name: d.bdevName }];
    }
    return [...this.#disks].sort((a, b) => a.index - b.index).map((d) => ({ nbd_device: d.device, bdev_name: d.bdevName }));
  }

  get(device: string): KernelDisk | undefined {
    return this.#find(device);
  }

  /** The device `b` is attached as, if any (an attached bdev cannot be claimed). */
  deviceOf(b: Bdev): string | null {
    for (const d of this.#disks) if (d.export.bdev === b) return d.device;
    return null;
  }

  /** Resolves once every device has been told of the resizes of its bdev so far. */
  async resized(): Promise<void> {
    await Promise.all([...this.#disks].map((d) => d.resized));
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#disks].map((d) => d.stop('the server is shutting down')));
  }

  #find(device: string): KernelDisk | undefined {
    for (const d of this.#disks) if (d.device === device) return d;
    return undefined;
  }
}
