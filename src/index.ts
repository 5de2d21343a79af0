// The embedded API. Re-exports only.

/** The aionbd target: bdevs, NBD exports and JSON-RPC in one object, promise-based. */
export { Server } from './server.js';
/** Server's core: bdevs, exports, kernel devices and lifecycle, for the modules it is given. */
export {
  Target,
  type AionbdServerOptions,
  type TargetOptions,
  type ExportParams,
  type ExportInfo,
  type IostatQuery,
  type DiskParams,
  type ConfigFile,
  type SubsystemConfig,
} from './target.js';
/** Every bdev module: its descriptor (aioModule, ...), its constructors and option types (createAioBdev, ...). */
export * from './modules/list.js';
/** Module constructors for building bdevs by hand, by module name (see Server for the managed way). */
export { bdevs, MODULES, type BdevConstructors } from './modules/index.js';
export type { BdevModule, ModuleContext } from './bdev/module.js';
export { NbdServer, type ServerOptions } from './nbd/server.js';
export { Export, type ExportOptions } from './nbd/export.js';
/** Kernel devices without nbd-client (Server.startDisk attaches; this detaches any /dev/nbdN). */
export { KernelDisk, type KernelDiskOptions } from './nbd/kernel/disk.js';
export type { DiskInfo } from './nbd/kernel/disks.js';
export { detachDevice } from './nbd/kernel/detach.js';
export { parseListenAddress, formatAddress, nbdUri, type ListenAddress } from './nbd/address.js';
export { Bdev, type BdevProps, type Claim } from './bdev/bdev.js';
export { BdevRegistry, flush, type AddOptions } from './bdev/registry.js';
export { describeBdev } from './bdev/describe.js';
export { IoStat, TICK_RATE, type ResetMode, type HistogramOptions } from './bdev/iostat.js';
export { LatencyHistogram, quantile, decodeCounts } from './bdev/histogram.js';
export type { QosLimits } from './bdev/qos.js';
export type { HistogramParams } from './bdev/settings.js';
/** One I/O (newIo), its command flags, and what a module of one's own implements (BdevDriver). */
export { ALL_IO_FLAGS, IoFlag, IoType, newIo, BdevIo, type BdevDriver, type ConfigEntry } from './bdev/types.js';
export { rpcCall } from './rpc/client.js';
export * from './errors.js';
export { logger, setLogger, silentLogger, type Logger } from './log.js';
