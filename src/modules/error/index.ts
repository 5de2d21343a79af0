// The error module: a pass-through bdev that fails, holds or corrupts the I/O it is told to
// (SPDK's bdev_error), for fault injection.
import { createErrorBdev } from './error.js';
import { defineModule } from '../../bdev/module.js';
import { ERROR_METHODS } from './methods.js';

export const errorModule = defineModule({
  name: 'error',
  productName: 'Error Injection Disk',
  create: createErrorBdev,
  methods: ERROR_METHODS,
});

export { createErrorBdev, injectError, resumePending, type Injection, type ErrorType, type InjectIoType } from './error.js';
export type { ErrorCreateOptions } from './ops.js';
