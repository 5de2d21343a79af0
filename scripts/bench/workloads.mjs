// The workloads, each one fio job. `id` is what --workloads takes and what the JSON keys on;
// `label` is what the tables and the chart show. The default set is the one the performance
// goals (GOALS in report.mjs) are judged on, plus the job of SPDK's AIO guide; the others can be
// named with --workloads.

/**
 * @typedef {'iops'|'mibps'|'latMeanUs'} MetricId
 */

/**
 * @typedef {object} Workload
 * @property {string} id
 * @property {string} label
 * @property {'randread'|'randwrite'|'randrw'|'read'|'write'} rw
 * @property {number} bs          block size in bytes
 * @property {number} iodepth     per connection (per fio job)
 * @property {number} numjobs     fio jobs = NBD connections
 * @property {number} [rwmixread] percentage of reads, for randrw
 * @property {MetricId} metric    the number this workload is judged on
 * @property {boolean} [cpuHog]   a CPU-bound process (one core) runs beside every target
 * @property {boolean} [rss]      the server's peak RSS is what this workload is for
 */

const K4 = 4096;
const M1 = 1 << 20;

/** @type {readonly Workload[]} */
export const WORKLOADS = Object.freeze([
  { id: 'randread-4k-qd32', label: '4k randread QD32', rw: 'randread', bs: K4, iodepth: 32, numjobs: 1, metric: 'iops' },
  { id: 'randwrite-4k-qd32', label: '4k randwrite QD32', rw: 'randwrite', bs: K4, iodepth: 32, numjobs: 1, metric: 'iops' },
  { id: 'randread-4k-qd1', label: '4k randread QD1', rw: 'randread', bs: K4, iodepth: 1, numjobs: 1, metric: 'latMeanUs' },
  { id: 'randwrite-4k-qd1', label: '4k randwrite QD1', rw: 'randwrite', bs: K4, iodepth: 1, numjobs: 1, metric: 'latMeanUs' },
  { id: 'read-1m-qd8', label: '1M seq read QD8', rw: 'read', bs: M1, iodepth: 8, numjobs: 1, metric: 'mibps' },
  { id: 'write-1m-qd8', label: '1M seq write QD8', rw: 'write', bs: M1, iodepth: 8, numjobs: 1, metric: 'mibps' },
  // The RSS goal (GOALS in report.mjs) is stated at 4 connections x iodepth 128.
  {
    id: 'randread-4k-4x128',
    label: '4k randread 4 conns x QD128',
    rw: 'randread',
    bs: K4,
    iodepth: 128,
    numjobs: 4,
    metric: 'iops',
    rss: true,
  },
  // The QD32 pair again with one core kept busy by another process: a single-threaded server
  // pays for every lost time slice in line, which the quiet rounds never show.
  {
    id: 'randread-4k-qd32-busy',
    label: '4k randread QD32, 1 core busy',
    rw: 'randread',
    bs: K4,
    iodepth: 32,
    numjobs: 1,
    metric: 'iops',
    cpuHog: true,
  },
  {
    id: 'randwrite-4k-qd32-busy',
    label: '4k randwrite QD32, 1 core busy',
    rw: 'randwrite',
    bs: K4,
    iodepth: 32,
    numjobs: 1,
    metric: 'iops',
    cpuHog: true,
  },
  // SPDK's AIO guide measures with this job (there through SPDK's own fio engine, 60 s): the
  // README gives its NBD form. No target is stated on it; it is in the default set so that a
  // reader of the guide finds the number.
  {
    id: 'randrw70-4k-qd32',
    label: '4k randrw 70/30 QD32 (SPDK AIO guide)',
    rw: 'randrw',
    rwmixread: 70,
    bs: K4,
    iodepth: 32,
    numjobs: 1,
    metric: 'iops',
  },
  // Not in the default set: no target is stated on them.
  { id: 'randread-4k-qd128', label: '4k randread QD128', rw: 'randread', bs: K4, iodepth: 128, numjobs: 1, metric: 'iops' },
  { id: 'randwrite-4k-qd128', label: '4k randwrite QD128', rw: 'randwrite', bs: K4, iodepth: 128, numjobs: 1, metric: 'iops' },
  { id: 'randread-4k-4x32', label: '4k randread 4 conns x QD32', rw: 'randread', bs: K4, iodepth: 32, numjobs: 4, metric: 'iops' },
]);

/** What a full run measures: every workload a performance goal is stated on, and the AIO guide's job. */
export const DEFAULT_WORKLOADS = Object.freeze([
  'randread-4k-qd32',
  'randwrite-4k-qd32',
  'randread-4k-qd1',
  'randwrite-4k-qd1',
  'read-1m-qd8',
  'write-1m-qd8',
  'randread-4k-4x128',
  'randread-4k-qd32-busy',
  'randwrite-4k-qd32-busy',
  'randrw70-4k-qd32',
]);

/**
 * What --smoke uses: one QD32 random workload with the CPU hog, so that every row (the qemu-nbd
 * control included), the hog and both kinds of image run, in as few runs as that takes.
 */
export const SMOKE_WORKLOADS = Object.freeze(['randwrite-4k-qd32-busy']);

/**
 * @param {string} id
 * @returns {Workload}
 */
export function workloadById(id) {
  const w = WORKLOADS.find((x) => x.id === id);
  if (w === undefined) throw new Error(`unknown workload "${id}" (known: ${WORKLOADS.map((x) => x.id).join(', ')})`);
  return w;
}
