// The AIO module: files and block devices through Linux kernel AIO (SPDK's bdev_aio).
import { createAioBdev } from './aio.js';
import { defineModule } from '../../bdev/module.js';
import { AIO_METHODS } from './methods.js';

export const aioModule = defineModule({
  name: 'aio',
  productName: 'AIO disk',
  errnoStatus: 'aio_error',
  create: createAioBdev,
  methods: AIO_METHODS,
});

export { createAioBdev, DEFAULT_QUEUE_DEPTH, type AioBdevOptions } from './aio.js';
export type { AioParams } from './ops.js';
