// Kernel devices, with SPDK's names and shapes: nbd_start_disk / nbd_stop_disk / nbd_get_disks.
// nbd_start_disk takes SPDK's bdev_name and nbd_device, plus our own attach settings.
import type { JSONSchemaType } from 'ajv';
import type { MethodSpec } from '../../method.js';
import { BYTES, flag, sizeFlag, str } from '../../method_form.js';
import { MAX_CONNECTIONS } from '../../nbd/kernel/disk.js';
import type { RpcHost } from '../dispatcher.js';
import { method } from './method.js';

interface StartDisk {
  bdev_name: string;
  nbd_device?: string;
  num_connections?: number;
  timeout?: number;
  dead_conn_timeout?: number;
  block_size?: number;
  readonly?: boolean;
  netlink?: boolean;
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

interface StopDisk {
  nbd_device: string;
}
const stopDisk: JSONSchemaType<StopDisk> = {
  type: 'object',
  properties: { nbd_device: { type: 'string' } },
  required: ['nbd_device'],
  additionalProperties: false,
};

interface GetDisks {
  nbd_device?: string;
}
const getDisks: JSONSchemaType<GetDisks> = {
  type: 'object',
  properties: { nbd_device: { type: 'string', nullable: true } },
  additionalProperties: false,
};

export const NBD_DISK_METHODS: readonly MethodSpec<RpcHost>[] = [
  // SPDK answers with the device path. rpc.py's forms; the flags after them are our own attach settings.
  method(
    'nbd_start_disk',
    startDisk,
    async (p, s) =>
      (
        await s.startDisk(p.bdev_name, {
          device: p.nbd_device,
          connections: p.num_connections,
          timeout: p.timeout,
          deadConnTimeout: p.dead_conn_timeout,
          blockSize: p.block_size,
          readonly: p.readonly,
          netlink: p.netlink,
        })
      ).device,
    {
      args: [str('bdev_name'), str('nbd_device', true)],
      flags: [
        flag(['-c', '--num-connections'], 'num_connections', 'int'),
        flag(['-t', '--timeout'], 'timeout', 'int', 'seconds'),
        flag(['--dead-conn-timeout'], 'dead_conn_timeout', 'int', 'seconds'),
        sizeFlag(['-b', '--block-size'], 'block_size', BYTES),
        flag(['-r', '--readonly'], 'readonly', 'bool'),
      ],
    },
  ),
  // Unlike SPDK, the answer waits until the kernel has let go: no polling of /proc/partitions.
  method(
    'nbd_stop_disk',
    stopDisk,
    async (p, s) => {
      await s.stopDisk(p.nbd_device);
      return true;
    },
    { args: [str('nbd_device')] },
  ),
  method('nbd_get_disks', getDisks, (p, s) => s.getDisks(p.nbd_device), { flags: [flag(['-n', '--nbd-device'], 'nbd_device')] }),
];
