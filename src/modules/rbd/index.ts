// The RBD module: Ceph RBD images through librbd's asynchronous API (SPDK's bdev_rbd).
import { defineModule } from '../../bdev/module.js';
import { createRbdBdev } from './bdev.js';
import { RBD_METHODS } from './methods.js';
import { closeClusters, clusterEntries } from './ops.js';

export const rbdModule = defineModule({
  name: 'rbd',
  productName: 'Ceph Rbd Disk',
  create: createRbdBdev,
  methods: RBD_METHODS,
  configEntries: clusterEntries,
  close: closeClusters,
});

export { createRbdBdev, type RbdBdevOptions, type RbdImageRef } from './bdev.js';
export { RbdConnection, RbdClusters, RBD_DEFAULTS, type RbdConnectParams, type RbdClusterInfo } from './cluster.js';
export type { RbdParams } from './module.js';
export * from './errors.js';
