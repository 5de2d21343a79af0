// `npm run bench -- --rbd`: the RBD section. One image of a one-node test cluster (memstore OSD
// on 127.0.0.1, src/testing/ceph.ts), written through once so that reads meet data, then in
// paired rounds: aionbd's RBD export and `qemu-nbd -f raw --cache=none rbd:POOL/IMAGE:conf=...`
// (both driven by the same fio nbd job), and `rbd bench` (librbd in-process, 32 threads, no NBD
// at all) on the same image, in a rotated order. Ratios are taken inside a round; the report
// gives their median and min-max, as the main benchmark does.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runFio } from './fio.mjs';
import { delay, startChild } from './procs.mjs';
import { rotated } from './plan.mjs';
import { REPO_ROOT, cpuSeconds, ensureBuilt, onPath } from './system.mjs';
import { canConnect, EXPORT_NAME } from './targets.mjs';
import { workloadById } from './workloads.mjs';

/** The RBD section's targets: aionbd's ratio to qemu-nbd (rbd: driver), and to `rbd bench`. */
export const RBD_GOALS = Object.freeze({ 'qemu-nbd': 1.2, 'rbd-bench': 0.8 });
export const RBD_WORKLOADS = Object.freeze(['randread-4k-qd32', 'randwrite-4k-qd32']);
const RBD_TARGETS = Object.freeze(['aionbd', 'qemu-nbd', 'rbd-bench']);
const READY_MS = 30_000;
const QEMU_RBD = '/usr/lib/x86_64-linux-gnu/qemu/block-rbd.so';

/**
 * What is missing for the section, as Debian packages.
 * @returns {string[]}
 */
export function rbdBenchMissing() {
  const need = { 'ceph-mon': 'ceph-mon', 'ceph-osd': 'ceph-osd', rbd: 'ceph-common', 'qemu-nbd': 'qemu-utils', fio: 'fio' };
  const pkgs = Object.entries(need)
    .filter(([t]) => !onPath(t))
    .map(([, p]) => p);
  if (!fs.existsSync(QEMU_RBD)) pkgs.push('qemu-block-extra');
  return [...new Set(pkgs)];
}

/**
 * One round's reading of one target: IOPS, and CPU microseconds per I/O of the process that
 * serves it (aionbd, qemu-nbd, or `rbd bench` itself), of fio's NBD client (null for `rbd
 * bench`, which has none) and of the OSD.
 * @typedef {{ iops: number, cpuUs: number|null, fioUs: number|null, osdUs: number|null }} RbdRun
 */

/**
 * One `rbd bench` run of `ops` 4k operations: its ops/s (its closing line), its operations, and
 * the CPU seconds of its process (read until it exits, connect and open included) and of the
 * OSD meanwhile. It has no time limit of its own, and its progress lines stay in its buffer until
 * it exits.
 * @param {string} conf
 * @param {string} spec   POOL/IMAGE
 * @param {'read'|'write'} type
 * @param {number} ops
 * @param {number|null} osd  the OSD's pid
 * @returns {Promise<{ iops: number, ops: number, cpu: number, osdCpu: number|null }>}
 */
async function rbdBenchOps(conf, spec, type, ops, osd) {
  const osdCpu = () => (osd === null ? 0 : cpuSeconds(osd));
  const osd0 = osdCpu();
  // librbd's cache off, as the NBD servers have it: with it, random reads of a small image hit RAM.
  const child = startChild('rbd', [
    '-c',
    conf,
    '--rbd_cache=false',
    'bench',
    '--io-type',
    type,
    '--io-size',
    '4K',
    '--io-threads',
    '32',
    '--io-pattern',
    'rand',
    '--io-total',
    String(Math.max(1000, Math.round(ops)) * 4096),
    spec,
  ]);
  const timer = setTimeout(() => {
    void child.stop(2_000);
  }, 600_000);
  // A process's CPU is readable until it is reaped: the last reading before the exit is its total.
  let cpu = 0;
  const sample = setInterval(() => {
    try {
      cpu = cpuSeconds(child.pid);
    } catch {
      // exited between two readings
    }
  }, 50);
  const st = await child.exited;
  clearInterval(sample);
  clearTimeout(timer);
  const osd1 = osdCpu();
  const m = /elapsed:\s*\S+\s+ops:\s*(\d+)\s+ops\/sec:\s*([\d.]+)/.exec(child.stdout());
  if (st.code !== 0 || m === null)
    throw new Error(`rbd bench failed (exit ${String(st.code)}): ${(child.stderr() + child.stdout()).slice(-800)}`);
  return { iops: Number(m[2]), ops: Number(m[1]), cpu, osdCpu: osd === null ? null : osd1 - osd0 };
}

/**
 * `rbd bench` for about `seconds`: a short run finds the rate, the measured run is sized by it.
 * CPU per operation is the difference between the two runs over the difference in operations,
 * so that what each run spends connecting and opening the image cancels out.
 * @param {string} conf
 * @param {string} spec
 * @param {'read'|'write'} type
 * @param {number} seconds
 * @param {number|null} osd  the OSD's pid
 * @returns {Promise<RbdRun>}
 */
async function rbdBench(conf, spec, type, seconds, osd) {
  const first = await rbdBenchOps(conf, spec, type, 2000, osd);
  const run = await rbdBenchOps(conf, spec, type, first.iops * seconds, osd);
  const perOp = (/** @type {number} */ c2, /** @type {number} */ c1) =>
    run.ops > first.ops ? (Math.max(0, c2 - c1) / (run.ops - first.ops)) * 1e6 : null;
  return {
    iops: run.iops,
    cpuUs: perOp(run.cpu, first.cpu),
    fioUs: null,
    osdUs: run.osdCpu === null || first.osdCpu === null ? null : perOp(run.osdCpu, first.osdCpu),
  };
}

/**
 * @param {'aionbd'|'qemu-nbd'} kind
 * @param {{ conf: string, spec: string, dir: string }} at
 */
async function startNbd(kind, at) {
  const sock = path.join(at.dir, `${kind}.sock`);
  fs.rmSync(sock, { force: true });
  const child =
    kind === 'aionbd'
      ? startChild(
          process.execPath,
          [
            path.join(REPO_ROOT, 'bin', 'aionbd.js'),
            'serve',
            '--listen',
            `unix:${sock}`,
            '--no-rpc',
            '--rbd',
            `${at.spec},conf=${at.conf},name=${EXPORT_NAME}`,
            '--log-level',
            'warn',
          ],
          { cwd: at.dir },
        )
      : startChild(
          'qemu-nbd',
          ['-f', 'raw', '--cache=none', '--shared=8', '--persistent', '-k', sock, '-x', EXPORT_NAME, `rbd:${at.spec}:conf=${at.conf}`],
          { cwd: at.dir },
        );
  const until = Date.now() + READY_MS;
  while (child.running() && Date.now() < until) {
    if (kind === 'aionbd' ? /^aionbd: exporting "/m.test(child.stdout()) : await canConnect(sock)) {
      return { pid: child.pid, uri: `nbd+unix:///${EXPORT_NAME}?socket=${sock}`, stop: () => child.stop() };
    }
    await delay(50);
  }
  await child.stop();
  throw new Error(`${child.command} was not ready: ${child.stderr().slice(-1500)}`);
}

/** @param {number[]} xs */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

/**
 * Runs the section and returns its Markdown.
 * @param {{ rounds: number, runtime: number, ramp: number, size: number, tmpDir: string }} opts
 * @param {(line: string) => void} say
 * @returns {Promise<{ markdown: string, json: object }>}
 */
export async function runRbdBench(opts, say) {
  const missing = rbdBenchMissing();
  if (missing.length > 0) throw new Error(`the RBD section needs: apt-get install ${missing.join(' ')}`);
  const { startCephCluster } = await import(path.join(REPO_ROOT, 'dist', 'testing', 'ceph.js'));
  const dir = fs.mkdtempSync(path.join(opts.tmpDir, 'aionbd-bench-rbd-'));
  say('starting a one-node Ceph cluster (memstore OSD on 127.0.0.1)');
  const ceph = await startCephCluster({ dir: path.join(dir, 'ceph'), memstoreBytes: Math.max(4 * 2 ** 30, opts.size * 3) });
  try {
    const image = 'bench';
    const spec = `${ceph.pool}/${image}`;
    await ceph.createImage(image, opts.size);
    say(`writing the ${opts.size >> 20} MiB image through once`);
    await ceph.rbd(
      ['bench', '--io-type', 'write', '--io-size', '4M', '--io-threads', '8', '--io-pattern', 'seq', '--io-total', String(opts.size), spec],
      600_000,
    );
    /** @type {Record<string, Record<string, RbdRun>[]>} per workload: one { target: reading } per round */
    const results = {};
    for (const id of RBD_WORKLOADS) {
      const w = workloadById(id);
      results[id] = [];
      for (let round = 0; round < opts.rounds; round++) {
        /** @type {Record<string, RbdRun>} */
        const got = {};
        for (const t of rotated([...RBD_TARGETS], round, RBD_WORKLOADS.indexOf(id))) {
          if (t === 'rbd-bench') {
            got[t] = await rbdBench(ceph.conf, spec, w.rw === 'randread' ? 'read' : 'write', opts.runtime, ceph.osdPid());
          } else {
            const srv = await startNbd(/** @type {'aionbd'|'qemu-nbd'} */ (t), { conf: ceph.conf, spec, dir });
            try {
              const r = await runFio(
                w,
                { iodepth: w.iodepth, numjobs: w.numjobs },
                { uri: srv.uri, pid: srv.pid, alsoPids: [ceph.osdPid()].filter((p) => p !== null) },
                { runtime: opts.runtime, ramp: opts.ramp, dir },
              );
              // CPU seconds per million I/Os are microseconds per I/O.
              got[t] = {
                iops: r.iops,
                cpuUs: r.cpuPerMIo,
                fioUs: r.iops > 0 ? (r.clientCpuPct / 100 / r.iops) * 1e6 : null,
                osdUs: r.alsoCpuPerMIo,
              };
            } finally {
              await srv.stop();
            }
          }
          say(`${id} round ${round + 1}/${opts.rounds}: ${t} ${Math.round(got[t]?.iops ?? 0)} IOPS`);
        }
        results[id]?.push(got);
      }
    }
    return report(results, opts);
  } finally {
    await ceph.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The median over the rounds of one reading of one target; null when no round has it.
 * @param {Record<string, RbdRun>[]} rounds
 * @param {string} t
 * @param {(r: RbdRun) => number|null} pick
 * @returns {number|null}
 */
function targetMedian(rounds, t, pick) {
  const xs = rounds.flatMap((r) => {
    const x = r[t] === undefined ? null : pick(r[t]);
    return x === null ? [] : [x];
  });
  return xs.length > 0 ? median(xs) : null;
}

/**
 * @param {Record<string, Record<string, RbdRun>[]>} results
 * @param {{ rounds: number, runtime: number, ramp: number, size: number }} opts
 */
function report(results, opts) {
  const lines = [
    '## RBD',
    '',
    `One image of ${opts.size >> 20} MiB on a one-node test cluster (one memstore OSD on 127.0.0.1 with a PG log of 1000 entries, this machine: ${os.cpus().length} cores), ` +
      `written through once; ${opts.rounds} paired rounds of ${opts.runtime} s (+${opts.ramp} s ramp), targets in a rotated order. ` +
      "aionbd: `aionbd serve --rbd POOL/IMAGE,conf=...`; qemu-nbd: `qemu-nbd -f raw --cache=none 'rbd:POOL/IMAGE:conf=...'` " +
      "(librbd's cache off in both); both driven by the same fio nbd job over a unix socket. `rbd bench`: librbd in-process, " +
      '32 threads, no NBD. IOPS are medians over the rounds; a ratio is aionbd over the other in the same round, median [min-max].',
    '',
    '| workload | aionbd IOPS | qemu-nbd IOPS | rbd bench IOPS | aionbd / qemu-nbd (goal >= 1.2) | aionbd / rbd bench (goal >= 0.8) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  /** @type {Record<string, unknown>} */
  const json = {};
  for (const [id, rounds] of Object.entries(results)) {
    const med = (/** @type {string} */ t) => targetMedian(rounds, t, (r) => r.iops) ?? 0;
    const ratio = (/** @type {string} */ t) => {
      const xs = rounds.map((r) => (r['aionbd']?.iops ?? 0) / (r[t]?.iops ?? 1));
      return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
    };
    const q = ratio('qemu-nbd');
    const b = ratio('rbd-bench');
    const f = (/** @type {{median: number, min: number, max: number}} */ r, /** @type {number} */ goal) =>
      `${r.median.toFixed(2)}x [${r.min.toFixed(2)}-${r.max.toFixed(2)}] ${r.median >= goal ? 'met' : 'not met'}`;
    lines.push(
      `| ${workloadById(id).label} | ${Math.round(med('aionbd'))} | ${Math.round(med('qemu-nbd'))} | ${Math.round(med('rbd-bench'))} | ${f(q, RBD_GOALS['qemu-nbd'])} | ${f(b, RBD_GOALS['rbd-bench'])} |`,
    );
    json[id] = { rounds, vsQemuNbd: q, vsRbdBench: b };
  }
  lines.push(
    '',
    "CPU per I/O in microseconds, medians over the rounds: the target's own process (aionbd, qemu-nbd, or `rbd bench` with " +
      "librbd inside it), fio's nbd client, and the OSD; the two cores run all of them. The NBD servers' and the OSD's are " +
      "read from /proc over fio's measured window; `rbd bench`'s and the OSD's beside it as the difference between a run " +
      'of 2000 operations and the measured run, so that connecting and opening the image cancel out.',
    '',
    '| workload | target | IOPS | target process | fio client | OSD | all |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  );
  const us = (/** @type {number|null} */ x) => (x === null ? '-' : x.toFixed(1));
  for (const [id, rounds] of Object.entries(results)) {
    for (const t of RBD_TARGETS) {
      const medOf = (/** @type {(r: RbdRun) => number|null} */ pick) => targetMedian(rounds, t, pick);
      const all = medOf((r) => (r.cpuUs === null || r.osdUs === null ? null : r.cpuUs + (r.fioUs ?? 0) + r.osdUs));
      lines.push(
        `| ${workloadById(id).label} | ${t} | ${Math.round(medOf((r) => r.iops) ?? 0)} | ${us(medOf((r) => r.cpuUs))} | ${us(medOf((r) => r.fioUs))} | ${us(medOf((r) => r.osdUs))} | ${us(all)} |`,
      );
    }
  }
  if (opts.rounds < 5 || opts.runtime < 8) lines.push('', `Fewer than 5 rounds of 8 s: indicative only.`);
  return { markdown: `${lines.join('\n')}\n`, json: { generated: new Date().toISOString(), settings: opts, results: json } };
}

/**
 * `npm run bench -- --rbd [--smoke|--quick] [--rounds N] [--runtime S] [--size S] [--out-dir D]`:
 * runs the section, prints its table and writes performance-rbd.md/.json (into docs/ unless
 * --out-dir or --smoke says otherwise).
 * @param {import('./options.mjs').BenchOptions} opts
 * @param {string} docsDir
 * @param {(line: string) => void} say
 * @returns {Promise<number>}
 */
export async function rbdSection(opts, docsDir, say) {
  ensureBuilt(say);
  const outDir = path.resolve(
    opts.outDir ?? (opts.mode === 'smoke' ? fs.mkdtempSync(path.join(os.tmpdir(), 'aionbd-bench-out-')) : docsDir),
  );
  const r = await runRbdBench({ rounds: opts.rounds, runtime: opts.runtime, ramp: opts.ramp, size: opts.size, tmpDir: opts.tmpDir }, say);
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'performance-rbd.md'), r.markdown);
  fs.writeFileSync(path.join(outDir, 'performance-rbd.json'), `${JSON.stringify(r.json, null, 2)}\n`);
  process.stdout.write(r.markdown);
  say(`wrote ${path.join(outDir, 'performance-rbd.md')} and .json`);
  return 0;
}
