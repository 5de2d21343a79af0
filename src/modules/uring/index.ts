// The uring module: files and block devices through io_uring (SPDK's bdev_uring).
import { defineModule } from '../../bdev/module.js';
import { URING_METHODS } from './methods.js';
import { createUringBdev } from './uring.js';

export const uringModule = defineModule({
  name: 'uring',
  productName: 'URING bdev',
  create: createUringBdev,
  methods: URING_METHODS,
});

export { createUringBdev, type UringBdevOptions } from './uring.js';
export type { UringParams } from './ops.js';
