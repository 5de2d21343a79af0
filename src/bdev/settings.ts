// The per-bdev settings SPDK keeps in its generic bdev layer rather than in a module: QoS limits
// (bdev_set_qos_limit) and the latency histogram (bdev_enable_histogram / bdev_get_histogram),
// set over RPC and written by save_config after each bdev's own entry, so a loaded config sets
// them again.
import { InvalidBdevError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Bdev } from './bdev.js';
import { histogramJSON, MAX_GRANULARITY } from './histogram.js';
import { HISTOGRAM_DEFAULTS, TICK_RATE } from './iostat.js';
import { QOS_IOS_STEP, QOS_LIMIT_KEYS, type QosLimits } from './qos.js';
import { IO_TYPE_NAME, type ConfigEntry, type IoType } from './types.js';

/**
 * bdev_set_qos_limit: the limits given are set (0 removes one), the others kept. As SPDK,
 * rw_ios_per_sec is rounded up to a multiple of 1000, and at least one limit must be given.
 */
export function setQosLimit(b: Bdev, limits: Partial<QosLimits>, log: Logger): void {
  if (!QOS_LIMIT_KEYS.some((k) => limits[k] !== undefined)) throw new InvalidBdevError('No rate limits specified');
  const l = { ...limits };
  const ios = l.rw_ios_per_sec;
  if (ios !== undefined && ios % QOS_IOS_STEP !== 0) {
    l.rw_ios_per_sec = Math.ceil(ios / QOS_IOS_STEP) * QOS_IOS_STEP;
    log.warn({ bdev: b.name, requested: ios, set: l.rw_ios_per_sec }, `rw_ios_per_sec is not a multiple of ${QOS_IOS_STEP}: rounded up`);
  }
  b.setQosLimits(l);
  log.info({ bdev: b.name, ...b.qosLimits }, 'QoS limits set');
}

export interface HistogramParams {
  enable: boolean;
  /** One I/O type's SPDK name (read, write, unmap, ...); absent: every type. */
  opc?: string | undefined;
  granularity?: number | undefined;
  minNsec?: number | undefined;
  maxNsec?: number | undefined;
}

const IO_TYPE_BY_NAME = new Map(Object.entries(IO_TYPE_NAME).map(([t, n]) => [n, Number(t) as IoType]));

/** bdev_enable_histogram, with SPDK's RPC defaults for what is not given. */
export function enableHistogram(b: Bdev, p: HistogramParams): void {
  if (!p.enable) {
    b.stat.enableHistogram(null);
    return;
  }
  const ioType = p.opc === undefined ? null : IO_TYPE_BY_NAME.get(p.opc);
  if (ioType === undefined)
    throw new InvalidBdevError(`unknown I/O type "${p.opc ?? ''}" (one of: ${[...IO_TYPE_BY_NAME.keys()].join(', ')})`);
  const granularity = p.granularity ?? HISTOGRAM_DEFAULTS.granularity;
  if (granularity < 1 || granularity > MAX_GRANULARITY)
    throw new InvalidBdevError(`granularity ${granularity} must be from 1 to ${MAX_GRANULARITY}`);
  const minNsec = p.minNsec ?? HISTOGRAM_DEFAULTS.minNsec,
    maxNsec = p.maxNsec ?? HISTOGRAM_DEFAULTS.maxNsec;
  if (minNsec >= maxNsec) throw new InvalidBdevError(`min_nsec ${minNsec} must be below max_nsec ${maxNsec}`);
  b.stat.enableHistogram({ ioType, granularity, minNsec, maxNsec });
}

/** bdev_get_histogram: SPDK's result, ticks being nanoseconds (tsc_rate 1e9). */
export function getHistogram(b: Bdev): Record<string, unknown> {
  const h = b.stat.enabled;
  if (h === null)
    throw new InvalidBdevError(`the histogram of bdev "${b.name}" is not enabled (bdev_enable_histogram ${b.name} --histogram)`);
  return histogramJSON(h.histogram, TICK_RATE);
}

export function settingsConfig(b: Bdev): ConfigEntry[] {
  const out: ConfigEntry[] = [];
  const limits = b.qosLimits;
  const set = QOS_LIMIT_KEYS.filter((k) => limits[k] > 0);
  if (set.length > 0)
    out.push({ method: 'bdev_set_qos_limit', params: { name: b.name, ...Object.fromEntries(set.map((k) => [k, limits[k]])) } });
  const h = b.stat.enabled;
  if (h !== null) {
    // SPDK writes only name, enable and opc; a shape other than the default is kept here too.
    const d = HISTOGRAM_DEFAULTS;
    const shaped = h.granularity !== d.granularity || h.minNsec !== d.minNsec || h.maxNsec !== d.maxNsec;
    out.push({
      method: 'bdev_enable_histogram',
      params: {
        name: b.name,
        enable: true,
        ...(h.ioType !== null ? { opc: IO_TYPE_NAME[h.ioType] } : {}),
        ...(shaped ? { granularity: h.granularity, min_nsec: h.minNsec, max_nsec: h.maxNsec } : {}),
      },
    });
  }
  return out;
}
