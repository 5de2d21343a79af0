// Every bdev module, one line each. A module's line registers it (its descriptor, made with
// defineModule, is found among these exports) and makes the rest of its exports part of the
// embedded API (src/index.ts re-exports this file).
export * from './aio/index.js';
export * from './malloc/index.js';
export * from './error/index.js';
export * from './delay/index.js';
export * from './raid/index.js';
export * from './split/index.js';
export * from './lvol/index.js';
export * from './rbd/index.js';
export * from './null/index.js';
export * from './passthru/index.js';
export * from './uring/index.js';
