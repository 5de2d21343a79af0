#!/usr/bin/env node
// `npm run bench`: aionbd (AIO bdev and uring bdev) against the disk (fio libaio and io_uring on
// the file), qemu-nbd, a qemu-nbd control without its 16-request cap, nbdkit null (the
// client/socket ceiling) and nbdkit file, in paired rounds, written as
// docs/performance.{md,json,png} and the README's benchmark summary.
//
// Why paired rounds: on this kind of shared 2-core VM one target's absolute numbers swing by
// 30-50% between runs minutes apart, and the disk's speed depends on how the image was written.
// So every round writes a fresh image per (image kind, workload), runs every target on it in a
// rotated order, and a ratio is only taken inside a round; the report gives the median of the
// per-round ratios with their min-max.
//
// How long: a full run is 5 rounds x 2 image kinds x 10 workloads x 7-8 targets (the qemu-nbd
// control only on the 5 QD32 workloads) = 750 runs of 8+1 s plus server start-up and 100 image
// fills of 1 GiB: over 2 hours (`--help` prints the estimate from the same constants).
// --quick is about 19 minutes, --smoke under a minute. Servers run one at a time and are always
// stopped, images and sockets removed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderChart } from './bench/chart.mjs';
import { hogCommand, startHog } from './bench/cpuhog.mjs';
import { runFio } from './bench/fio.mjs';
import { FILLS, freshImage } from './bench/image.mjs';
import { markdown, MIN_ROUNDS, MIN_RUNTIME_SEC } from './bench/markdown.mjs';
import { BASELINE_TARGET, parseOptions, USAGE, UsageError } from './bench/options.mjs';
import { estimate, humanDuration, rotated, targetsFor } from './bench/plan.mjs';
import { stopAll } from './bench/procs.mjs';
import { rbdSection } from './bench/rbd.mjs';
import { formatConnectionScale, scaleConnections } from './bench/scale_connections.mjs';
import { updateReadme } from './bench/readme.mjs';
import { buildRows, checkGoals, REPORT_FORMAT } from './bench/report.mjs';
import { scaleBdevs, scaleLines } from './bench/scale_bdevs.mjs';
import { ensureBuilt, ensureTools, machineInfo, REPO_ROOT } from './bench/system.mjs';
import { startServer, TARGETS } from './bench/targets.mjs';
import { WORKLOADS } from './bench/workloads.mjs';

/** Where the time goes and what was tried, written by hand; stored in the JSON, shown in the page. */
const ANALYSIS_FILE = path.join(REPO_ROOT, 'docs', 'performance.notes.md');
const DOCS_DIR = path.join(REPO_ROOT, 'docs');
const README = path.join(REPO_ROOT, 'README.md');

const say = (/** @type {string} */ line) => {
  process.stderr.write(`bench: ${line}\n`);
};

/** @param {number} n */
function human(n) {
  for (const [s, u] of /** @type {const} */ ([
    [40, 'T'],
    [30, 'G'],
    [20, 'M'],
    [10, 'K'],
  ]))
    if (n % 2 ** s === 0) return `${n / 2 ** s}${u}`;
  return `${n}`;
}

/** The hand-written analysis, if the repository has one. */
function readAnalysis() {
  try {
    return fs.readFileSync(ANALYSIS_FILE, 'utf8');
  } catch {
    return null;
  }
}

/**
 * Writes performance.json (unless json is false), performance.md and performance.png into
 * outDir, and the README summary when outDir is the repository's docs/. Returns the PNG's name,
 * or null when the chart could not be drawn (the Markdown then has no picture).
 * @param {import('./bench/report.mjs').Report} report
 * @param {string} outDir
 * @param {boolean} [json]
 * @returns {Promise<string|null>}
 */
async function writeOutputs(report, outDir, json = true) {
  fs.mkdirSync(outDir, { recursive: true });
  /** @type {string|null} */
  let png = 'performance.png';
  const s = report.settings;
  try {
    const chart = await renderChart(report.rows, {
      title: 'aionbd, qemu-nbd and nbdkit relative to fio libaio on the same image, same round',
      subtitle:
        `${String(s['mode'])} run on ${report.generated.slice(0, 10)}: ${String(report.machine['cores'])} cores, ` +
        `${String(s['sizeHuman'])} fresh images, ${String(s['rounds'])} paired rounds of ${String(s['runtime'])} s; bar = median, line = min-max`,
      fillLabels: Object.fromEntries(
        Object.entries(report.fills).map(([k, v]) => [k, k === 'direct' ? 'O_DIRECT fill' : k === 'cached' ? 'page-cache fill' : v.label]),
      ),
    });
    fs.writeFileSync(path.join(outDir, png), chart);
  } catch (err) {
    say(`the chart could not be drawn: ${err instanceof Error ? err.message : String(err)}`);
    png = null;
  }
  if (json) fs.writeFileSync(path.join(outDir, 'performance.json'), `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(path.join(outDir, 'performance.md'), markdown(report, png));
  if (path.resolve(outDir) === DOCS_DIR) {
    if (updateReadme(README, report)) say("regenerated the README's benchmark summary");
    else say('README.md has no benchmark summary markers: left as it is');
  }
  return png;
}

/**
 * @param {string} outDir
 * @param {string|null} png
 */
function outputs(outDir, png) {
  return ['performance.md', 'performance.json', ...(png !== null ? [png] : [])].map((f) => path.join(outDir, f)).join(', ');
}

/**
 * --render: the Markdown, the chart (and the README summary) again from an earlier run's JSON.
 * @param {string} jsonFile
 * @param {string|null} outDir
 * @returns {Promise<number>}
 */
async function render(jsonFile, outDir) {
  /** @type {import('./bench/report.mjs').Report} */
  const report = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
  if (report.format !== REPORT_FORMAT || !Array.isArray(report.rows) || !Array.isArray(report.comparisons)) {
    throw new Error(`${jsonFile} is not a paired-round performance.json (format ${REPORT_FORMAT}); run the benchmark again`);
  }
  // Reports written before the uring row judged one row only, and did not name it.
  for (const g of report.goals) g.subject ??= 'aionbd';
  const dir = path.resolve(outDir ?? path.dirname(jsonFile));
  const sameDir = path.resolve(path.dirname(jsonFile)) === dir;
  const png = await writeOutputs(report, dir, !sameDir);
  say(`rendered ${outputs(dir, png)} from ${jsonFile}`);
  return png === null ? 1 : 0;
}

/**
 * --scale-connections: what an idle connection costs, for this checkout (and the baseline's).
 * @param {number} count
 * @param {string} tmpDir
 * @param {string|null} baseline
 * @returns {Promise<number>}
 */
async function scaleSection(count, tmpDir, baseline) {
  ensureBuilt(say);
  for (const [label, bin] of [
    ['aionbd', undefined],
    ...(baseline !== null ? [[BASELINE_TARGET, path.join(baseline, 'bin', 'aionbd.js')]] : []),
  ]) {
    const r = await scaleConnections({ count, tmpDir, bin, say });
    process.stdout.write(
      `${formatConnectionScale(r)
        .map((l, i) => (i === 0 ? `${l} [${label}]` : l))
        .join('\n')}\n`,
    );
  }
  return 0;
}

async function main() {
  /** @type {import('./bench/options.mjs').BenchOptions} */
  let opts;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench: ${err.message} (see --help)\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (opts.list) {
    for (const w of WORKLOADS) process.stdout.write(`${w.id.padEnd(24)} ${w.label}\n`);
    return 0;
  }
  if (opts.render !== null) return render(opts.render, opts.outDir);
  if (opts.rbd) return rbdSection(opts, DOCS_DIR, say);
  if (opts.scaleConnections !== null) return scaleSection(opts.scaleConnections, opts.tmpDir, opts.baseline);
  if (opts.scale !== null) {
    ensureBuilt(say);
    for (const root of [REPO_ROOT, ...(opts.baseline !== null ? [opts.baseline] : [])]) {
      const r = await scaleBdevs({ root, count: opts.scale, tmpDir: opts.tmpDir, say });
      process.stdout.write(`${scaleLines(r).join('\n')}\n`);
    }
    return 0;
  }
  const started = Date.now();
  // Other work on the machine skews every number: the report says how busy it was.
  const loadAtStart = os.loadavg()[0]?.toFixed(2) ?? '?';
  if (opts.targets.some((t) => t.startsWith('aionbd'))) ensureBuilt(say);
  const wantHog = opts.workloads.some((w) => w.cpuHog === true);
  const runnable = ensureTools(
    opts.targets.map((t) => /** @type {import('./bench/targets.mjs').Target} */ (TARGETS[t])),
    wantHog ? ['stress-ng'] : [],
    opts.install,
    say,
  );
  const targets = runnable.map((t) => t.id);
  if (targets.length === 0) throw new Error('no target can run');

  fs.mkdirSync(opts.tmpDir, { recursive: true });
  const work = fs.mkdtempSync(path.join(opts.tmpDir, 'aionbd-bench-'));
  const outDir = path.resolve(
    opts.outDir ?? (opts.mode === 'smoke' ? fs.mkdtempSync(path.join(os.tmpdir(), 'aionbd-bench-out-')) : DOCS_DIR),
  );

  let stopping = false;
  const cleanup = async () => {
    await stopAll();
    fs.rmSync(work, { recursive: true, force: true });
  };
  const onSignal = (/** @type {NodeJS.Signals} */ sig) => {
    if (stopping) return;
    stopping = true;
    say(`${sig}: stopping the servers`);
    void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const plan = {
      rounds: opts.rounds,
      fills: opts.fills,
      workloads: opts.workloads,
      targets,
      runtime: opts.runtime,
      ramp: opts.ramp,
      size: opts.size,
    };
    const est = estimate(plan);
    say(
      `${opts.mode} run: ${opts.rounds} rounds x ${opts.fills.length} image kinds (${opts.fills.join(', ')}) x ${opts.workloads.length} workloads ` +
        `x ${targets.length} targets = ${est.runs} runs of ${opts.runtime}+${opts.ramp} s on ${est.comparisons} fresh ${human(opts.size)} images, ` +
        `about ${humanDuration(est.seconds)}; output ${outDir}`,
    );

    /** @type {import('./bench/report.mjs').Comparison[]} */
    const comparisons = [];
    /** @type {Record<string, string>} */
    const commands = {};
    let done = 0;
    const image = path.join(work, 'disk.img');
    // Rounds are the outer loop, so slow drift of the machine spreads over every comparison.
    for (let round = 0; round < opts.rounds && !stopping; round++) {
      for (const fillId of opts.fills) {
        const fill = /** @type {import('./bench/image.mjs').Fill} */ (FILLS[fillId]);
        for (const [wi, w] of opts.workloads.entries()) {
          if (stopping) break;
          const order = rotated(targetsFor(targets, w), round, wi);
          /** @type {import('./bench/report.mjs').Comparison} */
          const cmp = { round: round + 1, fill: fillId, workload: w.id, order, runs: {}, errors: {} };
          try {
            await freshImage(fill, image, opts.size, work);
          } catch (err) {
            if (stopping) break;
            const msg = err instanceof Error ? err.message : String(err);
            for (const t of order) cmp.errors[t] = msg;
            say(`round ${round + 1}, ${fillId} image for ${w.id}: FAILED: ${msg}`);
            comparisons.push(cmp);
            continue;
          }
          for (const t of order) {
            if (stopping) break;
            done++;
            const target = /** @type {import('./bench/targets.mjs').Target} */ (TARGETS[t]);
            const shape = /** @type {{ iodepth: number, numjobs: number }} */ (target.shape(w));
            const tag = `[${done}/${est.runs}] round ${round + 1}, ${fillId} image, ${w.id} on ${t}`;
            /** @type {import('./bench/targets.mjs').RunningServer|null} */
            let srv = null;
            /** @type {import('./bench/cpuhog.mjs').Hog|null} */
            let hog = null;
            try {
              if (target.server !== null) {
                srv = await startServer(target, { image, size: opts.size, dir: work, baseline: opts.baseline });
                // Paths of this run's directory and of this checkout mean nothing to a reader.
                commands[t] = srv.command.split(work).join('$BENCH_DIR').split(`${REPO_ROOT}/`).join('');
              }
              if (w.cpuHog === true) hog = startHog(opts.runtime + opts.ramp + 30, work);
              const on = srv !== null ? { uri: srv.uri, pid: srv.pid } : { file: image, engine: target.engine ?? 'libaio' };
              const r = await runFio(w, shape, on, { runtime: opts.runtime, ramp: opts.ramp, dir: work });
              if (srv !== null && !srv.running()) throw new Error(`${t} exited during the run: ${srv.stderr().slice(-1000)}`);
              cmp.runs[t] = r;
              say(
                `${tag}: ${Math.round(r.iops).toLocaleString('en-US')} IOPS, ${r.mibps.toFixed(1)} MiB/s, ` +
                  `mean ${r.latMeanUs.toFixed(1)} µs${r.cpuPerMIo !== null ? `, ${r.cpuPerMIo.toFixed(2)} CPU s/M I/O` : ''}`,
              );
            } catch (err) {
              if (stopping) break;
              const msg = err instanceof Error ? err.message : String(err);
              cmp.errors[t] = msg;
              say(`${tag}: FAILED: ${msg}`);
            } finally {
              if (hog !== null) await hog.stop();
              if (srv !== null) await srv.stop();
            }
          }
          comparisons.push(cmp);
        }
      }
    }
    fs.rmSync(image, { force: true });
    if (stopping) return 130;

    const rows = buildRows(comparisons, plan);
    const durationSec = (Date.now() - started) / 1000;
    /** @type {import('./bench/report.mjs').Report} */
    const report = {
      format: REPORT_FORMAT,
      generated: new Date().toISOString(),
      command: ['npm run bench', ...(opts.argv.length > 0 ? ['--', ...opts.argv] : [])].join(' '),
      settings: {
        mode: opts.mode,
        size: opts.size,
        sizeHuman: human(opts.size),
        rounds: opts.rounds,
        runtime: opts.runtime,
        ramp: opts.ramp,
        fills: opts.fills,
        workloads: opts.workloads,
        targets,
        ...(wantHog ? { cpuHog: hogCommand() } : {}),
        fioCommon:
          '`--time_based --norandommap --randrepeat=0 --group_reporting --unified_rw_reporting=mixed --lat_percentiles=1`; ' +
          'NBD: `--ioengine=nbd --uri=nbd+unix:///bench?socket=...`; libaio: `--ioengine=libaio --direct=1 --filename=IMAGE`; ' +
          'io_uring: `--ioengine=io_uring --direct=1 --filename=IMAGE`',
      },
      machine: { ...machineInfo(work), loadAverageAtStart: loadAtStart, loadAverageAtEnd: os.loadavg()[0]?.toFixed(2) ?? '?' },
      targets: Object.fromEntries(targets.map((t) => [t, { label: TARGETS[t]?.label ?? t, description: TARGETS[t]?.description ?? t }])),
      fills: Object.fromEntries(opts.fills.map((f) => [f, { label: FILLS[f]?.label ?? f, description: FILLS[f]?.description ?? f }])),
      commands,
      comparisons,
      rows,
      goals: checkGoals(rows, opts.fills),
      notes: [
        "A ratio is aionbd's (or a row's) number divided by the reference's number from the same round, on the same fresh image; the median and min-max are over the rounds. No ratio is ever taken between medians.",
        'Each comparison (one workload on one kind of image in one round) starts from a newly written image: the old file is deleted and a new one written whole by the stated method, so no comparison runs on blocks an earlier one rewrote. Within a comparison the targets run in an order rotated by round and by workload; a write workload rewrites part of the image for the targets after it, which the rotation spreads over every target.',
        'Every server is started afresh for each run and stopped after it; the CPU-bound neighbour of the "1 core busy" workloads runs only during the run it belongs to.',
        "IOPS, MiB/s and latency come from fio's JSON report; latency is fio's total latency (submission to completion), which for the NBD rows includes fio's NBD client (libnbd).",
        'Server CPU: utime+stime of the server process (all threads) from /proc/PID/stat, from the end of the warm-up (fio\'s first "connected to NBD server" line plus the ramp time) until fio exits, divided by the I/Os fio completed in its measured window; the kernel counts it in 10 ms ticks.',
        'Peak RSS: VmHWM from /proc/PID/status after the run; the server is new for each run, so it is the peak of that run.',
        'All rows share one machine with fio: a server that burns more CPU also slows the client.',
      ],
      analysis: readAnalysis(),
      durationSec,
    };

    const png = await writeOutputs(report, outDir);
    say(`wrote ${outputs(outDir, png)} in ${Math.round(durationSec)} s`);
    if (opts.rounds < MIN_ROUNDS || opts.runtime < MIN_RUNTIME_SEC) {
      say(`fewer than ${MIN_ROUNDS} rounds of ${MIN_RUNTIME_SEC} s: the verdicts below are indicative only`);
    }
    for (const g of report.goals) say(`${g.met === null ? 'not measured' : g.met ? 'met' : 'NOT MET'}: ${g.goal} (${g.fill} image)`);
    const failed = rows.filter((r) => r.rounds.every((x) => x === null));
    if (failed.length > 0) {
      say(`${failed.length} rows have no successful run: ${failed.map((r) => `${r.fill}/${r.workload}/${r.target}`).join(', ')}`);
      return 1;
    }
    return png === null ? 1 : 0;
  } finally {
    if (!stopping) await cleanup();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (err) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    await stopAll();
    process.exitCode = 1;
  },
);
