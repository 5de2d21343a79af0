// The split module: a bdev cut into equal parts (SPDK's bdev_split).
import { defineModule } from '../../bdev/module.js';
import { createSplitBdevs } from './split.js';
import { SPLIT_METHODS } from './methods.js';

export const splitModule = defineModule({ name: 'split', productName: 'Split Disk', create: createSplitBdevs, methods: SPLIT_METHODS });

export { createSplitBdevs, type SplitOptions } from './split.js';
