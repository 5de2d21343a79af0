// The delay module: a pass-through bdev that adds latency to reads and writes (SPDK's bdev_delay).
import { createDelayBdev } from './delay.js';
import { defineModule } from '../../bdev/module.js';
import { DELAY_METHODS } from './methods.js';

export const delayModule = defineModule({ name: 'delay', productName: 'delay', create: createDelayBdev, methods: DELAY_METHODS });

export { createDelayBdev, updateDelayLatency, type DelayBdevOptions, type DelayLatencies, type LatencyType } from './delay.js';
export type { DelayParams } from './ops.js';
