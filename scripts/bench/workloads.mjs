// The workloads of issue 7, each one fio job. `id` is what --workloads takes and what the JSON
// keys on; `label` is what the table and the chart show.

/**
 * @typedef {object} Workload
 * @property {string} id
 * @property {string} label
 * @property {'randread'|'randwrite'|'randrw'|'read'|'write'} rw
 * @property {number} bs          block size in bytes
 * @property {number} iodepth     per connection (per fio job)
 * @property {number} numjobs     fio jobs = NBD connections
 * @property {number} [rwmixread] percentage of reads, for randrw
 */

const K4 = 4096;
const M1 = 1 << 20;

/** @type {readonly Workload[]} */
export const WORKLOADS = Object.freeze([
  { id: 'randread-4k-qd1', label: '4k randread QD1', rw: 'randread', bs: K4, iodepth: 1, numjobs: 1 },
  { id: 'randread-4k-qd32', label: '4k randread QD32', rw: 'randread', bs: K4, iodepth: 32, numjobs: 1 },
  { id: 'randread-4k-qd128', label: '4k randread QD128', rw: 'randread', bs: K4, iodepth: 128, numjobs: 1 },
  { id: 'randwrite-4k-qd1', label: '4k randwrite QD1', rw: 'randwrite', bs: K4, iodepth: 1, numjobs: 1 },
  { id: 'randwrite-4k-qd32', label: '4k randwrite QD32', rw: 'randwrite', bs: K4, iodepth: 32, numjobs: 1 },
  { id: 'randwrite-4k-qd128', label: '4k randwrite QD128', rw: 'randwrite', bs: K4, iodepth: 128, numjobs: 1 },
  { id: 'randrw70-4k-qd32', label: '4k randrw 70% read QD32', rw: 'randrw', rwmixread: 70, bs: K4, iodepth: 32, numjobs: 1 },
  { id: 'read-1m-qd8', label: '1M seq read QD8', rw: 'read', bs: M1, iodepth: 8, numjobs: 1 },
  { id: 'write-1m-qd8', label: '1M seq write QD8', rw: 'write', bs: M1, iodepth: 8, numjobs: 1 },
  // Multi-conn: the same total depth as QD128 spread over 4 connections, then 4 x QD128 (the
  // issue's RSS target is stated at 4 connections x iodepth 128).
  { id: 'randread-4k-4x32', label: '4k randread 4 conns x QD32', rw: 'randread', bs: K4, iodepth: 32, numjobs: 4 },
  { id: 'randread-4k-4x128', label: '4k randread 4 conns x QD128', rw: 'randread', bs: K4, iodepth: 128, numjobs: 4 },
]);

/** The subset a --smoke run uses: one random small-block path and one large sequential write. */
export const SMOKE_WORKLOADS = Object.freeze(['randread-4k-qd32', 'write-1m-qd8']);

/**
 * @param {string} id
 * @returns {Workload}
 */
export function workloadById(id) {
  const w = WORKLOADS.find((x) => x.id === id);
  if (w === undefined) throw new Error(`unknown workload "${id}" (known: ${WORKLOADS.map((x) => x.id).join(', ')})`);
  return w;
}
