// Per-bdev I/O statistics, kept in plain number fields so recording allocates nothing.
import { IoType } from './types.js';

/** Latencies are kept in nanosecond ticks (tick_rate 1e9), as SPDK reports ticks and a rate. */
export const TICK_RATE = 1_000_000_000;

export class IoStat {
  bytesRead = 0; numReadOps = 0;
  bytesWritten = 0; numWriteOps = 0;
  bytesUnmapped = 0; numUnmapOps = 0;
  numFlushOps = 0; numWriteZeroesOps = 0; bytesZeroed = 0;
  readLatencyTicks = 0; writeLatencyTicks = 0; unmapLatencyTicks = 0;
  maxReadLatencyTicks = 0; minReadLatencyTicks = 0;
  maxWriteLatencyTicks = 0; minWriteLatencyTicks = 0;
  ioErrors = 0;
  queueDepth = 0;

  record(type: IoType, bytes: number, result: number, startMs: number, nowMs: number): void {
    if (result < 0) { this.ioErrors++; return; }
    const ticks = Math.round((nowMs - startMs) * 1e6);
    switch (type) {
      case IoType.Read:
        this.bytesRead += bytes; this.numReadOps++; this.readLatencyTicks += ticks;
        if (ticks > this.maxReadLatencyTicks) this.maxReadLatencyTicks = ticks;
        if (this.minReadLatencyTicks === 0 || ticks < this.minReadLatencyTicks) this.minReadLatencyTicks = ticks;
        break;
      case IoType.Write:
        this.bytesWritten += bytes; this.numWriteOps++; this.writeLatencyTicks += ticks;
        if (ticks > this.maxWriteLatencyTicks) this.maxWriteLatencyTicks = ticks;
        if (this.minWriteLatencyTicks === 0 || ticks < this.minWriteLatencyTicks) this.minWriteLatencyTicks = ticks;
        break;
      case IoType.Unmap:
        this.bytesUnmapped += bytes; this.numUnmapOps++; this.unmapLatencyTicks += ticks;
        break;
      case IoType.Flush: this.numFlushOps++; break;
      case IoType.WriteZeroes: this.numWriteZeroesOps++; this.bytesZeroed += bytes; break;
      default: break;
    }
  }
}
