// The null module: bdevs with nothing behind them, reading zeroes (SPDK's bdev_null).
import { defineModule } from '../../bdev/module.js';
import { NULL_METHODS } from './methods.js';
import { createNullBdev } from './null.js';

export const nullModule = defineModule({
  name: 'null',
  productName: 'Null disk',
  startsEmpty: true,
  create: createNullBdev,
  methods: NULL_METHODS,
});

export { createNullBdev, type NullBdevOptions } from './null.js';
export type { NullParams } from './ops.js';
