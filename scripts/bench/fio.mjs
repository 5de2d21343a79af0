// One fio run of one workload against one target, measured: fio's JSON for IOPS, bandwidth and
// latency; the server's /proc for CPU seconds over the measured window and peak RSS.
import { delay, startChild } from './procs.mjs';
import { cpuSeconds, peakRss, resetPeakRss } from './system.mjs';

/**
 * @typedef {object} RunResult
 * @property {number} iops
 * @property {number} mibps
 * @property {number} latMeanUs        submission to completion, mean
 * @property {number} latP99Us         submission to completion, 99th percentile
 * @property {number} ios              I/Os completed in the measured window
 * @property {number|null} cpuPerMIo   server CPU seconds per million I/Os (null: no server)
 * @property {number|null} peakRssMiB  server peak RSS during the run (null: no server)
 * @property {number} clientCpuPct     fio's own usr+sys CPU, percent of one core
 * @property {number|null} alsoCpuPerMIo CPU seconds per million I/Os of the `alsoPids` processes,
 *                                      over the server's window (null: none given)
 * @property {string} [rssNote]        set when the peak could not be reset before the run
 */

/**
 * fio arguments for a workload: NBD targets through the nbd engine, the others on the file.
 * @param {import('./workloads.mjs').Workload} w
 * @param {{ iodepth: number, numjobs: number }} shape   the target's job shape for w
 * @param {{ uri: string } | { file: string, engine: 'libaio'|'io_uring' }} on
 * @param {{ runtime: number, ramp: number }} t
 * @returns {string[]}
 */
export function fioArgs(w, shape, on, t) {
  const engine = 'uri' in on ? ['--ioengine=nbd', `--uri=${on.uri}`] : [`--ioengine=${on.engine}`, '--direct=1', `--filename=${on.file}`];
  return [
    `--name=${w.id}`,
    ...engine,
    `--rw=${w.rw}`,
    ...(w.rwmixread !== undefined ? [`--rwmixread=${w.rwmixread}`] : []),
    `--bs=${w.bs}`,
    `--iodepth=${shape.iodepth}`,
    `--numjobs=${shape.numjobs}`,
    '--group_reporting',
    '--time_based',
    `--runtime=${ms(t.runtime)}`,
    ...(t.ramp > 0 ? [`--ramp_time=${ms(t.ramp)}`] : []),
    // Random offsets without fio's block map (it only costs the client CPU), seeds differing per run.
    '--norandommap',
    '--randrepeat=0',
    // Reads and writes of randrw in one set of numbers; percentiles of total latency.
    '--unified_rw_reporting=mixed',
    '--lat_percentiles=1',
    '--percentile_list=50:99',
    // The report goes to stdout, after the "connected" lines that time the CPU window.
    '--output-format=json',
  ];
}

/** @param {number} sec */
function ms(sec) {
  return `${Math.round(sec * 1000)}ms`;
}

/**
 * @param {import('./workloads.mjs').Workload} w
 * @param {{ iodepth: number, numjobs: number }} shape
 * @param {{ uri: string, pid: number, alsoPids?: number[] } | { file: string, engine: 'libaio'|'io_uring' }} on
 *        alsoPids: other processes the I/O goes through (a storage daemon), timed with the server
 * @param {{ runtime: number, ramp: number, dir: string }} t
 * @returns {Promise<RunResult>}
 */
export async function runFio(w, shape, on, t) {
  const pid = 'pid' in on ? on.pid : null;
  const also = 'alsoPids' in on ? (on.alsoPids ?? []) : [];
  const alsoCpu = () => also.reduce((sum, p) => sum + cpuSeconds(p), 0);
  const rssReset = pid !== null && resetPeakRss(pid);
  const child = startChild('fio', fioArgs(w, shape, on, t), { cwd: t.dir });
  const limitMs = (t.runtime + t.ramp) * 1000 + 60_000;
  const timer = setTimeout(() => {
    void child.stop(2_000);
  }, limitMs);
  try {
    // The CPU window starts where fio's measured window does: at the first NBD connection (fio
    // prints it) plus the ramp time. Its end, after fio exits, adds the disconnect: small.
    /** @type {number|null} */
    let cpu0 = null;
    let also0 = 0;
    if (pid !== null) {
      const connectedBy = Date.now() + 20_000;
      while (child.running() && Date.now() < connectedBy && !/connected to NBD server/.test(child.stdout() + child.stderr()))
        await delay(5);
      await delay(t.ramp * 1000);
      cpu0 = cpuSeconds(pid);
      also0 = alsoCpu();
    }
    const st = await child.exited;
    const cpu1 = pid !== null ? cpuSeconds(pid) : null;
    const also1 = pid !== null ? alsoCpu() : 0;
    const rss = pid !== null ? peakRss(pid) : null;
    if (st.code !== 0) {
      throw new Error(
        `fio ${w.id} ${st.code === null ? `killed (${String(st.signal)}${child.running() ? '' : `, limit ${limitMs} ms`})` : `exited ${st.code}`}: ${(child.stderr() + child.stdout()).trim().slice(-1500)}`,
      );
    }
    const parsed = parseReport(child.stdout(), w);
    return {
      ...parsed,
      cpuPerMIo: cpu0 !== null && cpu1 !== null && parsed.ios > 0 ? (cpu1 - cpu0) / (parsed.ios / 1e6) : null,
      alsoCpuPerMIo: also.length > 0 && cpu0 !== null && parsed.ios > 0 ? (also1 - also0) / (parsed.ios / 1e6) : null,
      peakRssMiB: rss !== null ? rss / 2 ** 20 : null,
      ...(rssReset || pid === null ? {} : { rssNote: 'peak since server start (clear_refs refused)' }),
    };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * @typedef {object} FioStats
 * @property {number} iops
 * @property {number} bw            KiB/s
 * @property {number} total_ios
 * @property {{ mean: number, percentile?: Record<string, number> }} lat_ns
 */

/**
 * @param {string} text  fio's JSON report (anything before the first "{" is ignored)
 * @param {import('./workloads.mjs').Workload} w
 * @returns {Omit<RunResult, 'cpuPerMIo'|'peakRssMiB'|'alsoCpuPerMIo'>}
 */
export function parseReport(text, w) {
  const at = text.indexOf('{');
  if (at < 0) throw new Error(`fio ${w.id}: no JSON report`);
  /** @type {{ jobs?: { error: number, usr_cpu: number, sys_cpu: number, mixed?: FioStats }[] }} */
  const report = JSON.parse(text.slice(at));
  const job = report.jobs?.[0];
  const m = job?.mixed;
  if (job === undefined || m === undefined) throw new Error(`fio ${w.id}: the report has no job with mixed statistics`);
  if (job.error !== 0) throw new Error(`fio ${w.id}: job error ${job.error}`);
  const p99 = m.lat_ns.percentile?.['99.000000'];
  if (p99 === undefined) throw new Error(`fio ${w.id}: no 99th percentile of latency in the report`);
  if (!(m.iops > 0) || !(m.total_ios > 0)) throw new Error(`fio ${w.id}: no I/O completed`);
  return {
    iops: m.iops,
    mibps: m.bw / 1024,
    latMeanUs: m.lat_ns.mean / 1000,
    latP99Us: p99 / 1000,
    ios: m.total_ios,
    clientCpuPct: job.usr_cpu + job.sys_cpu,
  };
}
