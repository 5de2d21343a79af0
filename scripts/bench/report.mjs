// Turns the paired rounds into rows and ratios, and judges the performance goals (GOALS). A ratio is
// only ever taken between two runs of the same round (same fresh image, same minutes of the
// machine); a row's ratio to a reference is the median of those per-round ratios, with their
// min and max. Medians of absolute numbers are shown for orientation only and never divided.
import { TARGETS } from './targets.mjs';

/** @typedef {import('./fio.mjs').RunResult} RunResult */
/** @typedef {import('./workloads.mjs').Workload} Workload */

/** The metrics every run has, or has null for (CPU and RSS: no server for libaio). */
export const METRICS = Object.freeze(/** @type {const} */ (['iops', 'mibps', 'latMeanUs', 'latP99Us', 'cpuPerMIo', 'peakRssMiB']));
/** @typedef {typeof METRICS[number]} Metric */

/**
 * @typedef {object} Comparison   one workload on one fresh image in one round: every target, rotated
 * @property {number} round        1-based
 * @property {string} fill         how the image was written (FILLS)
 * @property {string} workload
 * @property {string[]} order      the targets in the order they ran
 * @property {Record<string, RunResult>} runs
 * @property {Record<string, string>} errors
 */

/**
 * @typedef {object} Spread   per-round values of one quantity and their median, min and max
 * @property {number} median
 * @property {number} min
 * @property {number} max
 * @property {number} n                 rounds with a value
 * @property {(number|null)[]} perRound  index = round - 1
 */

/**
 * @typedef {object} Row
 * @property {string} fill
 * @property {string} workload
 * @property {string} workloadLabel
 * @property {string} target
 * @property {string} targetLabel
 * @property {{ iodepth: number, numjobs: number }} shape   fio's job for this target
 * @property {(RunResult|null)[]} rounds   index = round - 1; null: failed or stopped
 * @property {string[]} errors
 * @property {Record<Metric, Spread|null>|null} absolute   spreads of the absolute numbers (orientation only)
 * @property {Record<string, Record<Metric, Spread|null>>} vs  reference target -> per-round ratios row/reference
 */

/**
 * @typedef {object} GoalItem
 * @property {string} workload
 * @property {Spread|null} value   the ratio (or, for RSS, the absolute MiB) over the rounds
 * @property {number|null} roundsMet
 */

/**
 * @typedef {object} Goal
 * @property {string} id
 * @property {string} goal          as GOALS states it
 * @property {string} subject       the row judged (SUBJECTS)
 * @property {string} fill
 * @property {string|null} ref      the reference target, null for an absolute target
 * @property {Metric} metric
 * @property {'>='|'<='|'<'} op
 * @property {number} threshold
 * @property {'median'|'max'} judgedOn   ratios on their median over the rounds, RSS on its worst round
 * @property {GoalItem[]} items
 * @property {boolean|null} met     null: no item measured
 * @property {boolean} partial      some items not measured (met covers the rest)
 */

/**
 * @typedef {object} Report
 * @property {number} format          2: paired rounds
 * @property {string} generated       ISO date
 * @property {string} command
 * @property {Record<string, unknown>} settings
 * @property {Record<string, string|number>} machine
 * @property {Record<string, {label: string, description: string}>} targets
 * @property {Record<string, {label: string, description: string}>} fills
 * @property {Record<string, string>} commands  target id -> the server command line it ran
 * @property {Comparison[]} comparisons
 * @property {Row[]} rows
 * @property {Goal[]} goals
 * @property {string[]} notes
 * @property {string|null} analysis   hand-written Markdown (docs/performance.notes.md at run time)
 * @property {number} durationSec
 */

/** The JSON format this module writes and reads. */
export const REPORT_FORMAT = 2;

/**
 * @param {number[]} xs
 * @returns {number}
 */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? /** @type {number} */ (s[mid]) : /** @type {number} */ (s[mid - 1] + /** @type {number} */ (s[mid])) / 2;
}

/**
 * @param {(number|null)[]} perRound
 * @returns {Spread|null}
 */
export function spread(perRound) {
  const ok = /** @type {number[]} */ (perRound.filter((x) => x !== null && Number.isFinite(x)));
  if (ok.length === 0) return null;
  return { median: median(ok), min: Math.min(...ok), max: Math.max(...ok), n: ok.length, perRound };
}

/**
 * @param {RunResult|null|undefined} r
 * @param {Metric} m
 * @returns {number|null}
 */
function metricOf(r, m) {
  const v = r?.[m];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/**
 * @param {Comparison[]} comparisons
 * @param {{ rounds: number, fills: string[], workloads: Workload[], targets: string[] }} plan
 * @returns {Row[]}
 */
export function buildRows(comparisons, plan) {
  /** @type {Row[]} */
  const rows = [];
  for (const fill of plan.fills) {
    for (const w of plan.workloads) {
      const comps = comparisons.filter((c) => c.fill === fill && c.workload === w.id);
      const byRound = (/** @type {string} */ t) =>
        Array.from({ length: plan.rounds }, (_, i) => comps.find((c) => c.round === i + 1)?.runs[t] ?? null);
      const present = plan.targets.filter((t) => TARGETS[t]?.shape(w) != null);
      for (const t of present) {
        const mine = byRound(t);
        const shape = /** @type {{ iodepth: number, numjobs: number }} */ (TARGETS[t]?.shape(w));
        /** @type {Row['vs']} */
        const vs = {};
        for (const ref of present) {
          if (ref === t) continue;
          const theirs = byRound(ref);
          vs[ref] = /** @type {Record<Metric, Spread|null>} */ (
            Object.fromEntries(
              METRICS.map((m) => [
                m,
                spread(
                  mine.map((r, i) => {
                    const a = metricOf(r, m);
                    const b = metricOf(theirs[i], m);
                    return a === null || b === null || b === 0 ? null : a / b;
                  }),
                ),
              ]),
            )
          );
        }
        const anyRun = mine.some((r) => r !== null);
        rows.push({
          fill,
          workload: w.id,
          workloadLabel: w.label,
          target: t,
          targetLabel: TARGETS[t]?.label ?? t,
          shape,
          rounds: mine,
          errors: comps.flatMap((c) => (c.errors[t] !== undefined ? [`round ${c.round}: ${c.errors[t]}`] : [])),
          absolute: anyRun
            ? /** @type {Record<Metric, Spread|null>} */ (
                Object.fromEntries(METRICS.map((m) => [m, spread(mine.map((r) => metricOf(r, m)))]))
              )
            : null,
          vs,
        });
      }
    }
  }
  return rows;
}

/**
 * @typedef {object} GoalDef
 * @property {string} id
 * @property {string} goal
 * @property {string[]} workloads
 * @property {string|null} ref
 * @property {Metric} metric
 * @property {'>='|'<='|'<'} op
 * @property {number} threshold
 */

/** The performance goals aionbd is held to, each judged on its rows of every image kind. */
/** @type {readonly GoalDef[]} */
export const GOALS = Object.freeze([
  {
    id: 'qd32-libaio',
    goal: '4k randread/randwrite QD32: IOPS >= 0.8x fio libaio',
    workloads: ['randread-4k-qd32', 'randwrite-4k-qd32'],
    ref: 'libaio',
    metric: 'iops',
    op: '>=',
    threshold: 0.8,
  },
  {
    id: 'qd32-qemu',
    goal: '4k randread/randwrite QD32: IOPS >= 1.2x qemu-nbd',
    workloads: ['randread-4k-qd32', 'randwrite-4k-qd32'],
    ref: 'qemu-nbd',
    metric: 'iops',
    op: '>=',
    threshold: 1.2,
  },
  {
    id: 'qd32-busy-libaio',
    goal: '4k randread/randwrite QD32, 1 core busy: IOPS >= 0.8x fio libaio',
    workloads: ['randread-4k-qd32-busy', 'randwrite-4k-qd32-busy'],
    ref: 'libaio',
    metric: 'iops',
    op: '>=',
    threshold: 0.8,
  },
  {
    id: 'qd32-busy-qemu',
    goal: '4k randread/randwrite QD32, 1 core busy: IOPS >= 1.2x qemu-nbd',
    workloads: ['randread-4k-qd32-busy', 'randwrite-4k-qd32-busy'],
    ref: 'qemu-nbd',
    metric: 'iops',
    op: '>=',
    threshold: 1.2,
  },
  {
    id: 'qd1-latency',
    goal: '4k QD1: mean latency <= 1.1x qemu-nbd',
    workloads: ['randread-4k-qd1', 'randwrite-4k-qd1'],
    ref: 'qemu-nbd',
    metric: 'latMeanUs',
    op: '<=',
    threshold: 1.1,
  },
  {
    id: 'seq-libaio',
    goal: '1M sequential read/write QD8: MiB/s >= 0.9x fio libaio',
    workloads: ['read-1m-qd8', 'write-1m-qd8'],
    ref: 'libaio',
    metric: 'mibps',
    op: '>=',
    threshold: 0.9,
  },
  {
    id: 'rss-4x128',
    goal: '4 connections x QD128 4k: server peak RSS < 150 MiB',
    workloads: ['randread-4k-4x128'],
    ref: null,
    metric: 'peakRssMiB',
    op: '<',
    threshold: 150,
  },
]);

/**
 * @param {number} v
 * @param {'>='|'<='|'<'} op
 * @param {number} threshold
 */
function holds(v, op, threshold) {
  return op === '>=' ? v >= threshold : op === '<=' ? v <= threshold : v < threshold;
}

/**
 * The rows the goals are judged on: aionbd with the AIO bdev (its default), and with the uring
 * bdev when the run has it. Each is judged on its own; neither stands in for the other.
 */
export const SUBJECTS = Object.freeze(['aionbd', 'aionbd-uring']);

/**
 * @param {Row[]} rows
 * @param {string[]} fills
 * @returns {Goal[]}
 */
export function checkGoals(rows, fills) {
  /** @type {Goal[]} */
  const goals = [];
  for (const subject of SUBJECTS.filter((t) => rows.some((r) => r.target === t))) {
    for (const fill of fills) {
      for (const d of GOALS) goals.push(judge(rows, subject, fill, d));
    }
  }
  return goals;
}

/**
 * @param {Row[]} rows
 * @param {string} subject
 * @param {string} fill
 * @param {GoalDef} d
 * @returns {Goal}
 */
function judge(rows, subject, fill, d) {
  const judgedOn = d.ref === null ? 'max' : 'median';
  const items = d.workloads.map((wl) => {
    const row = rows.find((r) => r.fill === fill && r.workload === wl && r.target === subject);
    const value = row === undefined ? null : d.ref === null ? (row.absolute?.[d.metric] ?? null) : (row.vs[d.ref]?.[d.metric] ?? null);
    const roundsMet = value === null ? null : value.perRound.filter((x) => x !== null && holds(x, d.op, d.threshold)).length;
    return { workload: wl, value, roundsMet };
  });
  const got = items.filter((i) => i.value !== null);
  return {
    id: d.id,
    goal: d.goal,
    subject,
    fill,
    ref: d.ref,
    metric: d.metric,
    op: d.op,
    threshold: d.threshold,
    judgedOn,
    items,
    met: got.length === 0 ? null : got.every((i) => i.value !== null && holds(i.value[judgedOn], d.op, d.threshold)),
    partial: got.length > 0 && got.length < items.length,
  };
}
