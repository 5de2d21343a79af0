// Kernel devices, with SPDK's names and shapes: nbd_start_disk / nbd_stop_disk / nbd_get_disks.
// nbd_start_disk takes SPDK's bdev_name and nbd_device, plus our own attach settings.
import type { JSONSchemaType } from 'ajv';
import { MAX_CONNECTIONS } from '../../nbd/kernel/disk.js';
import type { Server } from '../../target.js';
import type { Registrar } from '../dispatcher.js';

interface StartDisk {
  bdev_name: string; nbd_device?: string; num_connections?: number; timeout?: number;
  dead_conn_timeout?: number; block_size?: number; readonly?: boolean; netlink?: boolean;
}
const startDisk: JSONSchemaType<StartDisk> = {
  type: 'object',
  properties: {
    bdev_name: { type: 'string' },
    nbd_device: { type: 'string', nullable: true },
    num_connections: { type: 'integer', minimum: 1, maximum: MAX_CONNECTIONS, nullable: true },
    timeout: { type: 'integer', minimum: 0, maximum: 86_400, nullable: true },
    dead_conn_timeout: { type: 'integer', minimum: 0, maximum: 86_400, nullable: true },
    block_size: { type: 'integer', enum: [512, 1024, 2048, 4096], nullable: true },
    readonly: { type: 'boolean', nullable: true },
    netlink: { type: 'boolean', nullable: true },
  },
  required: ['bdev_name'],
  additionalProperties: false,
};

interface StopDisk { nbd_device: string }
const stopDisk: JSONSchemaType<StopDisk> = {
  type: 'object', properties: { nbd_device: { type: 'string' } }, required: ['nbd_device'], additionalProperties: false,
};

interface GetDisks { nbd_device?: string }
const getDisks: JSONSchemaType<GetDisks> = {
  type: 'object', properties: { nbd_device: { type: 'string', nullable: true } }, additionalProperties: false,
};

export function registerNbdDiskMethods(r: Registrar, s: Server): void {
  // SPDK answers with the device path.
  r.method('nbd_start_disk', startDisk, async (p) => (await s.startDisk(p.bdev_name, {
    device: p.nbd_device, connections: p.num_connections, timeout: p.timeout, deadConnTimeout: p.dead_conn_timeout,
    blockSize: p.block_size, readonly: p.readonly, netlink: p.netlink,
  })).device);
  // Unlike SPDK, the answer waits until the kernel has let go: no polling of /proc/partitions.
  r.method('nbd_stop_disk', stopDisk, async (p) => { await s.stopDisk(p.nbd_device); return true; });
  r.method('nbd_get_disks', getDisks, (p) => s.getDisks(p.nbd_device));
}
