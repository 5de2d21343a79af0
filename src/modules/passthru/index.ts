// The passthru module: a virtual bdev that forwards every I/O to the base it claims (SPDK's
// vbdev_passthru). The smallest complete module over a base; copy it to start a new one.
import { defineModule } from '../../bdev/module.js';
import { PASSTHRU_METHODS } from './methods.js';
import { createPassthruBdev } from './passthru.js';

export const passthruModule = defineModule({
  name: 'passthru',
  productName: 'passthru',
  create: createPassthruBdev,
  methods: PASSTHRU_METHODS,
});

export { createPassthruBdev, type PassthruBdevOptions } from './passthru.js';
export type { PassthruParams } from './ops.js';
