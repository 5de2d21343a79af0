// Turns the runs into rows (median per metric, ratios to qemu-nbd and to libaio), checks the
// issue-7 targets, and writes the JSON and the Markdown.
import { TARGETS } from './targets.mjs';

/** @typedef {import('./fio.mjs').RunResult} RunResult */
/** @typedef {import('./workloads.mjs').Workload} Workload */

/**
 * @typedef {object} Metrics
 * @property {number} iops
 * @property {number} mibps
 * @property {number} latMeanUs
 * @property {number} latP99Us
 * @property {number|null} cpuPerMIo
 * @property {number|null} peakRssMiB
 * @property {number} clientCpuPct
 */

/**
 * @typedef {object} Ratios   this row's metric divided by the reference target's
 * @property {number} iops
 * @property {number} mibps
 * @property {number} latMeanUs
 * @property {number} latP99Us
 * @property {number|null} cpuPerMIo
 * @property {number|null} peakRssMiB
 */

/**
 * @typedef {object} Row
 * @property {string} workload
 * @property {string} workloadLabel
 * @property {string} target
 * @property {string} targetLabel
 * @property {RunResult[]} runs
 * @property {string[]} errors
 * @property {Metrics|null} median     null when every run failed
 * @property {Ratios|null} vsQemuNbd
 * @property {Ratios|null} vsLibaio
 */

/**
 * @param {number[]} xs
 * @returns {number}
 */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? /** @type {number} */ (s[mid]) : (/** @type {number} */ (s[mid - 1]) + /** @type {number} */ (s[mid])) / 2;
}

/**
 * @param {(number|null)[]} xs
 * @returns {number|null}
 */
function medianOrNull(xs) {
  const ok = /** @type {number[]} */ (xs.filter((x) => x !== null));
  return ok.length === 0 ? null : median(ok);
}

/**
 * @param {RunResult[]} runs
 * @returns {Metrics|null}
 */
function medians(runs) {
  if (runs.length === 0) return null;
  return {
    iops: median(runs.map((r) => r.iops)),
    mibps: median(runs.map((r) => r.mibps)),
    latMeanUs: median(runs.map((r) => r.latMeanUs)),
    latP99Us: median(runs.map((r) => r.latP99Us)),
    cpuPerMIo: medianOrNull(runs.map((r) => r.cpuPerMIo)),
    peakRssMiB: medianOrNull(runs.map((r) => r.peakRssMiB)),
    clientCpuPct: median(runs.map((r) => r.clientCpuPct)),
  };
}

/**
 * @param {number|null} a
 * @param {number|null|undefined} b
 * @returns {number|null}
 */
function div(a, b) {
  return a === null || b === null || b === undefined || b === 0 ? null : a / b;
}

/**
 * @param {Metrics} m
 * @param {Metrics|null} ref
 * @returns {Ratios|null}
 */
function ratios(m, ref) {
  if (ref === null) return null;
  return {
    iops: m.iops / ref.iops,
    mibps: m.mibps / ref.mibps,
    latMeanUs: m.latMeanUs / ref.latMeanUs,
    latP99Us: m.latP99Us / ref.latP99Us,
    cpuPerMIo: div(m.cpuPerMIo, ref.cpuPerMIo),
    peakRssMiB: div(m.peakRssMiB, ref.peakRssMiB),
  };
}

/**
 * @param {Workload[]} workloads
 * @param {string[]} targets
 * @param {Map<string, { runs: RunResult[], errors: string[] }>} raw   keyed by `${workload}/${target}`
 * @returns {Row[]}
 */
export function buildRows(workloads, targets, raw) {
  /** @type {Row[]} */
  const rows = [];
  for (const w of workloads) {
    const med = (/** @type {string} */ t) => medians(raw.get(`${w.id}/${t}`)?.runs ?? []);
    const qemu = med('qemu-nbd');
    const libaio = med('libaio');
    for (const t of targets) {
      const r = raw.get(`${w.id}/${t}`) ?? { runs: [], errors: [] };
      const m = medians(r.runs);
      rows.push({
        workload: w.id, workloadLabel: w.label, target: t, targetLabel: TARGETS[t]?.label ?? t,
        runs: r.runs, errors: r.errors, median: m,
        vsQemuNbd: m === null ? null : ratios(m, qemu),
        vsLibaio: m === null ? null : ratios(m, libaio),
      });
    }
  }
  return rows;
}

/**
 * @typedef {object} Goal
 * @property {string} goal
 * @property {string} measured
 * @property {boolean|null} met    null: not measured in this run
 * @property {boolean} partial      some of its workloads were not measured (met covers the rest)
 */

/**
 * The issue-7 targets, judged on aionbd's rows.
 * @param {Row[]} rows
 * @returns {Goal[]}
 */
export function checkGoals(rows) {
  const aio = (/** @type {string} */ w) => rows.find((r) => r.workload === w && r.target === 'aionbd');
  /** @type {Goal[]} */
  const goals = [];
  /**
   * @param {string} goal
   * @param {string[]} wls
   * @param {(r: Row) => number|null} value
   * @param {(v: number) => boolean} ok
   * @param {(v: number) => string} fmt
   */
  const add = (goal, wls, value, ok, fmt) => {
    const vals = wls.map((w) => { const r = aio(w); return r === undefined ? null : value(r); });
    const measured = wls.map((w, i) => { const v = vals[i]; return `${w}: ${v == null ? 'n/a' : fmt(v)}`; }).join('; ');
    const got = /** @type {number[]} */ (vals.filter((v) => v != null));
    goals.push({ goal, measured, met: got.length === 0 ? null : got.every(ok), partial: got.length > 0 && got.length < vals.length });
  };
  const x = (/** @type {number} */ v) => `${v.toFixed(2)}x`;
  const qd32 = ['randread-4k-qd32', 'randwrite-4k-qd32'];
  add('4k random QD32: IOPS >= 1.2x qemu-nbd', qd32, (r) => r.vsQemuNbd?.iops ?? null, (v) => v >= 1.2, x);
  add('4k random QD32: IOPS >= 0.8x libaio', qd32, (r) => r.vsLibaio?.iops ?? null, (v) => v >= 0.8, x);
  add('1M sequential QD8: MiB/s >= 0.9x libaio', ['read-1m-qd8', 'write-1m-qd8'], (r) => r.vsLibaio?.mibps ?? null, (v) => v >= 0.9, x);
  add('QD1 mean latency <= 1.3x qemu-nbd', ['randread-4k-qd1', 'randwrite-4k-qd1'], (r) => r.vsQemuNbd?.latMeanUs ?? null, (v) => v <= 1.3, x);
  add('QD32 CPU per I/O <= qemu-nbd', qd32, (r) => r.vsQemuNbd?.cpuPerMIo ?? null, (v) => v <= 1.0, x);
  add('peak RSS < 150 MiB at 4 conns x QD128', ['randread-4k-4x128'], (r) => r.median?.peakRssMiB ?? null, (v) => v < 150, (v) => `${v.toFixed(0)} MiB`);
  return goals;
}

/**
 * @param {number|null|undefined} v
 * @param {number} [digits]
 */
function f(v, digits = 0) {
  if (v == null) return '—';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** @param {number|null|undefined} v */
function r2(v) { return v == null ? '—' : `${v.toFixed(2)}x`; }

/**
 * @typedef {object} Report
 * @property {string} generated         ISO date
 * @property {string} command
 * @property {Record<string, unknown>} settings
 * @property {Record<string, string|number>} machine
 * @property {Record<string, string>} targets   id -> how it was run
 * @property {Record<string, string>} commands  server id -> the exact command line
 * @property {Row[]} rows
 * @property {Goal[]} goals
 * @property {string[]} notes
 * @property {number} durationSec
 */

/**
 * @param {Report} rep
 * @param {string|null} pngName   the chart's file name beside the Markdown, or null
 * @param {string|null} [analysis]  hand-written Markdown (docs/performance.notes.md): where the
 *                                  time goes and what was tried; placed after the summary tables
 * @returns {string}
 */
export function markdown(rep, pngName, analysis = null) {
  const s = rep.settings;
  const L = [];
  L.push('# Performance', '');
  L.push(`Generated by \`${rep.command}\` on ${rep.generated.slice(0, 10)} (${String(s['mode'])} run, ${Math.round(rep.durationSec)} s); do not edit by hand, run the benchmark again.`, '');
  L.push(`Every workload ran against each target, one server at a time, on the same ${String(s['sizeHuman'])} image, filled with data first. `
    + `NBD servers were driven by \`fio --ioengine=nbd\` over a unix socket; \`fio libaio\` is fio on the image itself (\`ioengine=libaio direct=1\`), the ceiling. `
    + `Each run measured ${String(s['runtime'])} s after ${String(s['ramp'])} s of warm-up, ${String(s['repeat'])} repetition(s); the tables show the median of each metric.`, '');
  // Only the load before the first run says anything about other work: by the end the
  // benchmark's own last runs (fio with 4 jobs) are in the average.
  const load = Number(rep.machine['loadAverageAtStart']);
  const cores = Number(rep.machine['cores']);
  if (Number.isFinite(load) && Number.isFinite(cores) && load > cores / 2) {
    L.push(`**The machine was not idle**: its 1-minute load average was ${String(rep.machine['loadAverageAtStart'])} before the first run `
      + `(${cores} cores). Other work shared the CPUs and the disk, so absolute numbers are low and noisy; `
      + 'the targets ran interleaved, repetition by repetition, so the ratios are fairer than the absolute numbers.', '');
  } else if (Number.isFinite(load)) {
    L.push(`The machine was quiet before the first run (1-minute load average ${String(rep.machine['loadAverageAtStart'])}, ${cores} cores); `
      + 'the NBD targets still vary more than fio libaio from run to run (see the notes below), so the ratios of one run carry that noise.', '');
  }
  if (pngName !== null) L.push(`![IOPS of each target relative to fio libaio on the file, per workload](${pngName})`, '');

  L.push('## aionbd against the targets of issue 7', '', '| target | measured | met |', '| --- | --- | --- |');
  for (const g of rep.goals) L.push(`| ${g.goal} | ${g.measured} | ${g.met === null ? 'not measured' : g.met ? 'yes' : '**no**'}${g.partial ? ' (partly measured)' : ''} |`);
  L.push('');

  L.push('## aionbd at a glance', '', 'Ratios of aionbd to each other target on the same workload (IOPS: higher is better; latency, CPU and RSS: lower is better).', '');
  L.push('| workload | IOPS vs qemu-nbd | IOPS vs nbdkit | IOPS vs libaio | mean latency vs qemu-nbd | p99 latency vs qemu-nbd | CPU/IO vs qemu-nbd | peak RSS |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const byKey = new Map(rep.rows.map((r) => [`${r.workload}/${r.target}`, r]));
  for (const w of [...new Set(rep.rows.map((r) => r.workload))]) {
    const a = byKey.get(`${w}/aionbd`);
    if (a?.median == null) continue;
    const k = byKey.get(`${w}/nbdkit`)?.median;
    L.push(`| ${a.workloadLabel} | ${r2(a.vsQemuNbd?.iops)} | ${r2(k == null ? null : a.median.iops / k.iops)} | ${r2(a.vsLibaio?.iops)} | `
      + `${r2(a.vsQemuNbd?.latMeanUs)} | ${r2(a.vsQemuNbd?.latP99Us)} | ${r2(a.vsQemuNbd?.cpuPerMIo)} | ${f(a.median.peakRssMiB)} MiB |`);
  }
  L.push('');
  if (analysis !== null && analysis.trim() !== '') L.push(analysis.trim(), '');

  L.push('## All results', '');
  L.push('CPU is the server\'s user+system CPU seconds per million I/Os over the measured window; RSS is the server\'s peak resident set during the run. '
    + '`×qemu` and `×libaio` are ratios to qemu-nbd and to fio libaio on the same workload. libaio has no server, so it has no CPU or RSS.', '');
  L.push('| workload | target | IOPS | MiB/s | mean lat (µs) | p99 lat (µs) | CPU s / M I/O | peak RSS (MiB) | IOPS ×qemu | IOPS ×libaio | mean lat ×qemu | mean lat ×libaio | p99 ×qemu | p99 ×libaio | CPU ×qemu | RSS ×qemu |');
  L.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rep.rows) {
    const m = r.median;
    if (m === null) {
      L.push(`| ${r.workloadLabel} | ${r.targetLabel} | failed: ${r.errors[0]?.split('\n')[0]?.replace(/\|/g, '\\|').slice(0, 120) ?? 'no run'} |${' |'.repeat(13)}`);
      continue;
    }
    const q = r.vsQemuNbd; const l = r.vsLibaio;
    L.push(`| ${r.workloadLabel} | ${r.targetLabel} | ${f(m.iops)} | ${f(m.mibps, 1)} | ${f(m.latMeanUs, 1)} | ${f(m.latP99Us, 1)} | ${f(m.cpuPerMIo, 2)} | ${f(m.peakRssMiB, 1)} | `
      + `${r2(q?.iops)} | ${r2(l?.iops)} | ${r2(q?.latMeanUs)} | ${r2(l?.latMeanUs)} | ${r2(q?.latP99Us)} | ${r2(l?.latP99Us)} | ${r2(q?.cpuPerMIo)} | ${r2(q?.peakRssMiB)} |`);
  }
  L.push('');

  L.push('## Setup', '', '| | |', '| --- | --- |');
  for (const [k, v] of Object.entries(rep.machine)) L.push(`| ${k} | ${String(v)} |`);
  L.push('', 'Targets:', '');
  for (const [id, how] of Object.entries(rep.targets)) {
    const cmd = rep.commands[id];
    L.push(`- **${TARGETS[id]?.label ?? id}**: ${how}${cmd !== undefined ? `; ran as \`${cmd}\`` : ''}`);
  }
  L.push('', 'Workloads (fio job options besides the engine): ' + String(s['fioCommon']), '');
  L.push('## How it is measured', '');
  for (const n of rep.notes) L.push(`- ${n}`);
  L.push('');
  return L.join('\n');
}
