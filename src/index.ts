// The embedded API. Re-exports only.

/** The aionbd target: bdevs, NBD exports and JSON-RPC in one object, promise-based. */
export { Server, type AionbdServerOptions, type AioParams, type DelayParams, type RaidParams, type ExportParams, type ExportInfo, type IostatQuery, type DiskParams } from './target.js';
/** Module constructors for building bdevs by hand (see Server for the managed way). */
export { bdevs } from './bdev/modules.js';
export { NbdServer, type ServerOptions } from './nbd/server.js';
export { Export, type ExportOptions } from './nbd/export.js';
/** Kernel devices without nbd-client (Server.startDisk attaches; this detaches any /dev/nbdN). */
export { KernelDisk, type KernelDiskOptions } from './nbd/kernel/disk.js';
export type { DiskInfo } from './nbd/kernel/disks.js';
export { detachDevice } from './nbd/kernel/detach.js';
export { parseListenAddress, formatAddress, nbdUri, type ListenAddress } from './nbd/address.js';
export { Bdev, type BdevProps, type Claim } from './bdev/bdev.js';
export { BdevRegistry, flush, type AddOptions } from './bdev/registry.js';
export { createAioBdev, DEFAULT_QUEUE_DEPTH, type AioBdevOptions } from './bdev/aio.js';
export { createMallocBdev, type MallocBdevOptions } from './bdev/malloc.js';
export { createErrorBdev, injectError, resumePending, type Injection, type ErrorType, type InjectIoType } from './bdev/error.js';
export { createDelayBdev, updateDelayLatency, type DelayBdevOptions, type DelayLatencies, type LatencyType } from './bdev/delay.js';
export { createRaid0Bdev, type Raid0Options } from './bdev/raid0.js';
export { createSplitBdevs, type SplitOptions } from './bdev/split.js';
/** RBD: Server.rbdClusters.register() and Server.createRbd() are the managed way. */
export { createRbdBdev, type RbdBdevOptions, type RbdImageRef } from './bdev/rbd/bdev.js';
export { RbdConnection, RbdClusters, RBD_DEFAULTS, type RbdConnectParams, type RbdClusterInfo } from './bdev/rbd/cluster.js';
export type { RbdParams } from './bdev/rbd/module.js';
export * from './bdev/rbd/errors.js';
export { describeBdev } from './bdev/describe.js';
export { IoStat, TICK_RATE, type ResetMode, type HistogramOptions } from './bdev/iostat.js';
export { LatencyHistogram, quantile, decodeCounts } from './bdev/histogram.js';
export type { QosLimits } from './bdev/qos.js';
export type { HistogramParams } from './bdev/settings.js';
/** One I/O (newIo), its command flags, and what a module of one's own implements (BdevDriver). */
export { ALL_IO_FLAGS, IoFlag, IoType, newIo, BdevIo, type BdevDriver, type ConfigEntry } from './bdev/types.js';
export { rpcCall } from './rpc/client.js';
export type { ConfigFile, SubsystemConfig } from './rpc/config.js';
export * from './errors.js';
export { logger, setLogger, silentLogger, type Logger } from './log.js';
