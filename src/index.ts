// The embedded API. Re-exports only.
export { NbdServer, type ServerOptions } from './nbd/server.js';
export { Export, type ExportOptions } from './nbd/export.js';
export { parseListenAddress, formatAddress, nbdUri, type ListenAddress } from './nbd/address.js';
export { Bdev } from './bdev/bdev.js';
export { BdevRegistry } from './bdev/registry.js';
export { createAioBdev, DEFAULT_QUEUE_DEPTH, type AioBdevOptions } from './bdev/aio.js';
export { IoType, type BdevIo, type BdevDriver } from './bdev/types.js';
export * from './errors.js';
export { logger, setLogger, silentLogger, type Logger } from './log.js';
