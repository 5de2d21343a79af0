#!/usr/bin/env node
// `npm run bench`: aionbd against qemu-nbd, nbdkit and fio's own libaio on the same image, each
// workload of issue 7 repeated, medians reported as docs/performance.{md,json,png}.
// Options: `npm run bench -- --help`. Servers run one at a time and are always stopped.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderChart } from './bench/chart.mjs';
import { runFio } from './bench/fio.mjs';
import { parseOptions, USAGE, UsageError } from './bench/options.mjs';
import { startChild, stopAll } from './bench/procs.mjs';
import { buildRows, checkGoals, markdown } from './bench/report.mjs';
import { ensureBuilt, ensureTools, machineInfo, REPO_ROOT } from './bench/system.mjs';
import { startServer, TARGETS } from './bench/targets.mjs';
import { WORKLOADS } from './bench/workloads.mjs';

/** Seconds a run costs beyond its runtime and ramp: fio start-up, connect, JSON. */
const RUN_OVERHEAD_SEC = 0.6;
/** Where the time goes and what was tried, written by hand; copied into performance.md. */
const ANALYSIS_FILE = path.join(REPO_ROOT, 'docs', 'performance.notes.md');
/** Seconds to start and stop a server. */
const SERVER_OVERHEAD_SEC = 1;

const say = (/** @type {string} */ line) => { process.stderr.write(`bench: ${line}\n`); };

/** @param {number} n */
function human(n) {
  for (const [s, u] of /** @type {const} */ ([[40, 'T'], [30, 'G'], [20, 'M'], [10, 'K']])) if (n % 2 ** s === 0) return `${n / 2 ** s}${u}`;
  return `${n}`;
}

/**
 * Writes the whole image once with fio (O_DIRECT, 1 MiB sequential), so reads hit real data.
 * @param {string} image
 * @param {number} size
 * @param {string} dir
 */
async function fillImage(image, size, dir) {
  const child = startChild('fio', ['--name=fill', `--filename=${image}`, `--size=${size}`, '--rw=write', '--bs=1M',
    '--ioengine=libaio', '--direct=1', '--iodepth=8', '--output-format=terse'], { cwd: dir });
  const timer = setTimeout(() => { void child.stop(2_000); }, 600_000);
  const st = await child.exited;
  clearTimeout(timer);
  if (st.code !== 0) throw new Error(`filling ${image} failed: ${child.stderr().trim().slice(-1000)}`);
  const got = fs.statSync(image).size;
  if (got !== size) throw new Error(`${image} is ${got} bytes after filling, not ${size}`);
}

/** The hand-written analysis that goes into performance.md, if the repository has one. */
function readAnalysis() {
  try {
    return fs.readFileSync(ANALYSIS_FILE, 'utf8');
  } catch {
    return null;
  }
}

/**
 * Writes performance.json, performance.md and performance.png into outDir. Returns the PNG's
 * name, or null when the chart could not be drawn (the Markdown then has no picture).
 * @param {import('./bench/report.mjs').Report} report
 * @param {string} outDir
 * @param {boolean} [json]  false: leave performance.json as it is (--render)
 * @returns {Promise<string|null>}
 */
async function writeOutputs(report, outDir, json = true) {
  fs.mkdirSync(outDir, { recursive: true });
  /** @type {string|null} */
  let png = 'performance.png';
  const s = report.settings;
  try {
    const chart = await renderChart(report.rows, {
      title: 'aionbd vs qemu-nbd vs nbdkit vs fio libaio (direct I/O on the file)',
      subtitle: `${String(s['mode'])} run on ${report.generated.slice(0, 10)}: ${String(report.machine['cores'])} cores, `
        + `${String(s['sizeHuman'])} image, median of ${String(s['repeat'])}; higher is better`,
    });
    fs.writeFileSync(path.join(outDir, png), chart);
  } catch (err) {
    say(`the chart could not be drawn: ${err instanceof Error ? err.message : String(err)}`);
    png = null;
  }
  if (json) fs.writeFileSync(path.join(outDir, 'performance.json'), `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(path.join(outDir, 'performance.md'), markdown(report, png, readAnalysis()));
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
 * --render: the Markdown and the chart again from an earlier run's JSON (no measuring).
 * @param {string} jsonFile
 * @param {string|null} outDir
 * @returns {Promise<number>}
 */
async function render(jsonFile, outDir) {
  /** @type {import('./bench/report.mjs').Report} */
  const report = JSON.parse(fs.readFileSync(jsonFile, 'utf8'));
  if (!Array.isArray(report.rows) || typeof report.settings !== 'object') throw new Error(`${jsonFile} is not a performance.json of this benchmark`);
  const dir = path.resolve(outDir ?? path.dirname(jsonFile));
  const sameDir = path.resolve(path.dirname(jsonFile)) === dir;
  const png = await writeOutputs(report, dir, !sameDir);
  say(`rendered ${outputs(dir, png)} from ${jsonFile}`);
  return png === null ? 1 : 0;
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
  if (opts.help) { process.stdout.write(`${USAGE}\n`); return 0; }
  if (opts.list) {
    for (const w of WORKLOADS) process.stdout.write(`${w.id.padEnd(20)} ${w.label}\n`);
    return 0;
  }
  if (opts.render !== null) return render(opts.render, opts.outDir);
  const started = Date.now();
  // Other work on the machine skews every number: the report says how busy it was.
  const loadAtStart = os.loadavg()[0]?.toFixed(2) ?? '?';
  if (opts.targets.includes('aionbd')) ensureBuilt(say);
  const targets = ensureTools(opts.targets, opts.install, say);
  if (targets.length === 0) throw new Error('no target can run');

  fs.mkdirSync(opts.tmpDir, { recursive: true });
  const work = fs.mkdtempSync(path.join(opts.tmpDir, 'aionbd-bench-'));
  const outDir = path.resolve(opts.outDir ?? (opts.mode === 'smoke'
    ? fs.mkdtempSync(path.join(os.tmpdir(), 'aionbd-bench-out-'))
    : path.join(REPO_ROOT, 'docs')));
  const image = opts.image !== null ? path.resolve(opts.image) : path.join(work, 'disk.img');

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
    const runs = opts.workloads.length * targets.length * opts.repeat;
    const estimate = runs * (opts.runtime + opts.ramp + RUN_OVERHEAD_SEC)
      + opts.repeat * targets.filter((t) => TARGETS[t]?.server).length * SERVER_OVERHEAD_SEC;
    say(`${opts.mode} run: ${opts.workloads.length} workloads x ${targets.length} targets x ${opts.repeat} = ${runs} runs `
      + `of ${opts.runtime}+${opts.ramp} s, about ${estimate < 120 ? `${Math.ceil(estimate)} s` : `${Math.ceil(estimate / 60)} min`}; image ${image} (${human(opts.size)}), output ${outDir}`);
    say(`filling ${image}`);
    await fillImage(image, opts.size, work);

    /** @type {Map<string, { runs: import('./bench/fio.mjs').RunResult[], errors: string[] }>} */
    const raw = new Map();
    const slot = (/** @type {string} */ w, /** @type {string} */ t) => {
      const k = `${w}/${t}`;
      let s = raw.get(k);
      if (s === undefined) { s = { runs: [], errors: [] }; raw.set(k, s); }
      return s;
    };
    /** @type {Record<string, string>} */
    const commands = {};
    let done = 0;
    // Repetitions are the outer loop, so slow drift of the machine spreads over every target.
    for (let rep = 1; rep <= opts.repeat && !stopping; rep++) {
      for (const t of targets) {
        if (stopping) break;
        const isServer = TARGETS[t]?.server === true;
        /** @type {import('./bench/targets.mjs').RunningServer|null} */
        let srv = null;
        try {
          for (const w of opts.workloads) {
            if (stopping) break;
            done++;
            const tag = `[${done}/${runs}] ${w.id} on ${t}, repetition ${rep}`;
            try {
              if (isServer && (srv === null || !srv.running())) {
                if (srv !== null) await srv.stop();
                srv = await startServer(t, image, work, opts.baseline);
                commands[t] = srv.command.split(work).join('$BENCH_DIR');
              }
              const on = srv !== null ? { uri: srv.uri, pid: srv.pid } : { file: image };
              const r = await runFio(w, on, { runtime: opts.runtime, ramp: opts.ramp, dir: work });
              if (srv !== null && !srv.running()) throw new Error(`${t} exited during the run: ${srv.stderr().slice(-1000)}`);
              slot(w.id, t).runs.push(r);
              say(`${tag}: ${Math.round(r.iops).toLocaleString('en-US')} IOPS, ${r.mibps.toFixed(1)} MiB/s, `
                + `mean ${r.latMeanUs.toFixed(1)} µs${r.cpuPerMIo !== null ? `, ${r.cpuPerMIo.toFixed(2)} CPU s/M I/O` : ''}`);
            } catch (err) {
              if (stopping) break;
              const msg = err instanceof Error ? err.message : String(err);
              slot(w.id, t).errors.push(msg);
              say(`${tag}: FAILED: ${msg}`);
            }
          }
        } finally {
          if (srv !== null) await srv.stop();
        }
      }
    }
    if (stopping) return 130;

    const rows = buildRows(opts.workloads, targets, raw);
    const durationSec = (Date.now() - started) / 1000;
    /** @type {import('./bench/report.mjs').Report} */
    const report = {
      generated: new Date().toISOString(),
      command: ['npm run bench', ...(opts.argv.length > 0 ? ['--', ...opts.argv] : [])].join(' '),
      settings: {
        mode: opts.mode, size: opts.size, sizeHuman: human(opts.size), repeat: opts.repeat, runtime: opts.runtime, ramp: opts.ramp,
        workloads: opts.workloads, targets,
        fioCommon: '`--time_based --norandommap --randrepeat=0 --group_reporting --unified_rw_reporting=mixed --lat_percentiles=1`; '
          + 'NBD: `--ioengine=nbd --uri=nbd+unix:///bench?socket=...`; libaio: `--ioengine=libaio --direct=1 --filename=IMAGE`',
      },
      machine: { ...machineInfo(path.dirname(image)), loadAverageAtStart: loadAtStart, loadAverageAtEnd: os.loadavg()[0]?.toFixed(2) ?? '?' },
      targets: Object.fromEntries(targets.map((t) => [t, TARGETS[t]?.description ?? t])),
      commands,
      rows,
      goals: checkGoals(rows),
      notes: [
        'Each metric is the median of the repetitions, taken on its own (the median IOPS and the median p99 may come from different runs).',
        'IOPS, MiB/s and latency come from fio\'s JSON report; latency is fio\'s total latency (submission to completion), which for the NBD targets includes fio\'s NBD client (libnbd).',
        'Server CPU: utime+stime of the server process (all threads) from /proc/PID/stat, from the end of the warm-up (fio\'s first "connected to NBD server" line plus the ramp time) until fio exits, divided by the I/Os fio completed in its measured window. The kernel counts it in clock ticks (10 ms).',
        'Peak RSS: VmHWM from /proc/PID/status after the run, reset before each run by writing 5 to /proc/PID/clear_refs.',
        'Each server is started afresh for every repetition and serves every workload in turn; the image is written once before the first run (fio, O_DIRECT, 1 MiB sequential).',
        'nbdkit 1.32\'s file plugin has no O_DIRECT: cache=none does buffered I/O and then drops the pages it used with posix_fadvise, so it is not an O_DIRECT-to-O_DIRECT comparison.',
        'All four share one 2-core machine with fio: a server that burns more CPU also slows the client.',
      ],
      durationSec,
    };

    const png = await writeOutputs(report, outDir);
    say(`wrote ${outputs(outDir, png)} in ${Math.round(durationSec)} s`);
    const failed = rows.filter((r) => r.median === null);
    if (failed.length > 0) {
      say(`${failed.length} (workload, target) pairs have no successful run: ${failed.map((r) => `${r.workload}/${r.target}`).join(', ')}`);
      return 1;
    }
    return png === null ? 1 : 0;
  } finally {
    if (!stopping) await cleanup();
  }
}

main().then((code) => { process.exitCode = code; }, async (err) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  await stopAll();
  process.exitCode = 1;
});
