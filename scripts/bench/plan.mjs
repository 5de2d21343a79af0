// The shape of a run: which targets apply to which workload, the rotated order of a round, and
// how long it all takes (for --help and the first line a run prints).
import { TARGETS } from './targets.mjs';

/** Seconds a run costs beyond its runtime and ramp: fio start-up, connect, JSON. */
const RUN_OVERHEAD_SEC = 0.6;
/** Seconds to start and stop a server (node for aionbd is the slowest). */
const SERVER_OVERHEAD_SEC = 0.7;
/** Seconds to write and drop one GiB of image, per fill method (this machine's virtio disk). */
const FILL_SEC_PER_GIB = Object.freeze({ direct: 2, cached: 5 });

/**
 * The targets that run on workload w, in the order given.
 * @param {string[]} targets
 * @param {import('./workloads.mjs').Workload} w
 * @returns {string[]}
 */
export function targetsFor(targets, w) {
  return targets.filter((t) => TARGETS[t]?.shape(w) != null);
}

/**
 * The order of one comparison: the list rotated by the round (and by the workload, so that
 * within a round not every comparison starts with the same target). Over as many rounds as
 * there are targets, each target runs once in each position.
 * @param {string[]} ids
 * @param {number} round        0-based
 * @param {number} workloadIx   0-based
 * @returns {string[]}
 */
export function rotated(ids, round, workloadIx) {
  if (ids.length === 0) return [];
  const k = (round + workloadIx) % ids.length;
  return [...ids.slice(k), ...ids.slice(0, k)];
}

/**
 * @param {{ rounds: number, fills: string[], workloads: import('./workloads.mjs').Workload[], targets: string[],
 *           runtime: number, ramp: number, size: number }} p
 * @returns {{ runs: number, comparisons: number, seconds: number }}
 */
export function estimate(p) {
  let runs = 0;
  let perRound = 0;
  for (const w of p.workloads) {
    for (const t of targetsFor(p.targets, w)) {
      runs++;
      perRound += p.runtime + p.ramp + RUN_OVERHEAD_SEC + (TARGETS[t]?.server != null ? SERVER_OVERHEAD_SEC : 0);
    }
  }
  const gib = p.size / 2 ** 30;
  const fillSec =
    p.fills.reduce((s, f) => s + gib * /** @type {Record<string, number>} */ (FILL_SEC_PER_GIB[f] ?? 5), 0) * p.workloads.length;
  return {
    runs: runs * p.fills.length * p.rounds,
    comparisons: p.workloads.length * p.fills.length * p.rounds,
    seconds: p.rounds * (perRound * p.fills.length + fillSec),
  };
}

/** @param {number} sec */
export function humanDuration(sec) {
  if (sec < 120) return `${Math.ceil(sec)} s`;
  if (sec < 5400) return `${Math.ceil(sec / 60)} min`;
  return `${(sec / 3600).toFixed(1)} h`;
}
