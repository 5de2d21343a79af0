// The malloc module: bdevs in RAM (SPDK's bdev_malloc).
import { createMallocBdev } from './malloc.js';
import { defineModule } from '../../bdev/module.js';
import { MALLOC_METHODS } from './methods.js';

export const mallocModule = defineModule({
  name: 'malloc',
  productName: 'Malloc disk',
  startsEmpty: true,
  create: createMallocBdev,
  methods: MALLOC_METHODS,
});

export { createMallocBdev, type MallocBdevOptions } from './malloc.js';
export type { MallocParams } from './ops.js';
