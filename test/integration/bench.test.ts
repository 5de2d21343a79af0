// The benchmark script (`npm run bench`). Its --smoke mode (2 paired rounds of 0.5 s on 64M
// images of both fill kinds, one QD32 workload with a busy core, every row) proves the method
// end to end: each round runs every target on a fresh image in a rotated order, each ratio is
// taken within one round, and the page is rendered from the JSON alone. It asserts no timing:
// only that each number is there, sane, and computed from the right pair of runs. The report
// arithmetic is also checked on made-up rounds, where the median of per-round ratios and the
// ratio of medians differ.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain, run, type RunResult } from '../helpers/run.js';
import { REPO_ROOT } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';

const BENCH = path.join(REPO_ROOT, 'scripts', 'bench.mjs');
const has = tool('fio', 'qemu-nbd', 'nbdkit');

const SMOKE_WORKLOAD = 'randwrite-4k-qd32-busy';
const SMOKE_LABEL = '4k randwrite QD32, 1 core busy';
const FILLS = ['direct', 'cached'];
const TARGETS = ['aionbd', 'aionbd-uring', 'libaio', 'io_uring', 'qemu-nbd', 'qemu-nbd-qd16', 'nbdkit-null', 'nbdkit-file'];
/** fio on the file: no server, so no CPU or RSS. */
const SERVERLESS = ['libaio', 'io_uring'];
/** The rows the goals are judged on. */
const SUBJECTS = ['aionbd', 'aionbd-uring'];
const GOAL_IDS = ['qd32-libaio', 'qd32-qemu', 'qd32-busy-libaio', 'qd32-busy-qemu', 'qd1-latency', 'seq-libaio', 'rss-4x128'];

interface Run {
  iops: number;
  mibps: number;
  latMeanUs: number;
  latP99Us: number;
  cpuPerMIo: number | null;
  peakRssMiB: number | null;
}
interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
  perRound: (number | null)[];
}
type Metric = 'iops' | 'mibps' | 'latMeanUs' | 'latP99Us' | 'cpuPerMIo' | 'peakRssMiB';
interface Comparison {
  round: number;
  fill: string;
  workload: string;
  order: string[];
  runs: Record<string, Run>;
  errors: Record<string, string>;
}
interface Row {
  fill: string;
  workload: string;
  workloadLabel: string;
  target: string;
  targetLabel: string;
  shape: { iodepth: number; numjobs: number };
  rounds: (Run | null)[];
  errors: string[];
  absolute: Record<Metric, Spread | null> | null;
  vs: Record<string, Record<Metric, Spread | null>>;
}
interface Goal {
  id: string;
  subject: string;
  fill: string;
  ref: string | null;
  met: boolean | null;
  judgedOn: 'median' | 'max';
  threshold: number;
  items: { workload: string; value: Spread | null; roundsMet: number | null }[];
}
interface Report {
  format: number;
  generated: string;
  command: string;
  settings: { mode: string; rounds: number; size: number; fills: string[]; targets: string[]; cpuHog?: string };
  machine: Record<string, string | number>;
  targets: Record<string, { label: string; description: string }>;
  fills: Record<string, { label: string; description: string }>;
  comparisons: Comparison[];
  rows: Row[];
  goals: Goal[];
  durationSec: number;
}
interface ReportModule {
  buildRows(c: Comparison[], plan: { rounds: number; fills: string[]; workloads: unknown[]; targets: string[] }): Row[];
  checkGoals(rows: Row[], fills: string[]): Goal[];
}
interface PlanModule {
  rotated(ids: string[], round: number, workloadIx: number): string[];
}
interface WorkloadsModule {
  workloadById(id: string): unknown;
}

/** Processes started from `dir` or naming it (a server, fio or the CPU hog the benchmark left behind). */
function processesUsing(dir: string): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    let cmd: string;
    let cwd = '';
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      continue; // the process exited while we looked
    }
    if (cmd.includes(dir) || cwd.startsWith(dir)) found.push(`${pid}: ${cmd}`);
  }
  return found;
}

/** PNG width and height from its IHDR chunk, after checking the signature. */
function pngSize(buf: Buffer): { width: number; height: number } {
  expect(buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  expect(buf.toString('latin1', 12, 16)).toBe('IHDR');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

function mtime(file: string): number | null {
  return fs.existsSync(file) ? fs.statSync(file).mtimeMs : null;
}

function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

describe.skipIf(!has)('npm run bench -- --smoke', () => {
  let base: string;
  let out: string;
  let work: string;
  let r: RunResult;
  let rep: Report;
  const docsMd = path.join(REPO_ROOT, 'docs', 'performance.md');
  const readme = path.join(REPO_ROOT, 'README.md');
  const before = { docs: mtime(docsMd), readme: mtime(readme) };
  beforeAll(async () => {
    base = tmpDir('aionbd-bench-test-');
    out = path.join(base, 'out');
    work = path.join(base, 'work');
    r = await run(process.execPath, [BENCH, '--smoke', '--no-install', '--out-dir', out, '--tmp-dir', work], { timeoutMs: 240_000 });
    if (r.code === 0) rep = JSON.parse(fs.readFileSync(path.join(out, 'performance.json'), 'utf8')) as Report;
  }, 270_000);
  afterAll(() => {
    rmrf(base);
  });

  it('exits 0, stops every server and the CPU hog, removes its images and sockets', () => {
    expect(r.code, explain(r)).toBe(0);
    expect(processesUsing(work)).toEqual([]);
    expect(fs.readdirSync(work)).toEqual([]);
    // The smoke run writes only where it was told: the committed docs and README come from a full run.
    expect({ docs: mtime(docsMd), readme: mtime(readme) }).toEqual(before);
  });

  it('runs every target in every round, on a fresh image of each kind, in a rotated order', () => {
    expect(rep.format).toBe(2);
    expect(rep.settings).toMatchObject({ mode: 'smoke', rounds: 2, size: 64 << 20, fills: FILLS, targets: TARGETS });
    expect(rep.settings.cpuHog).toMatch(/stress-ng --cpu 1|for\(;;\)/);
    expect(rep.command).toContain('--smoke');
    expect(rep.machine['cores']).toBeGreaterThan(0);
    expect(Object.keys(rep.fills).sort()).toEqual([...FILLS].sort());
    expect(rep.comparisons.map((c) => `${c.round}/${c.fill}/${c.workload}`).sort()).toEqual(
      [1, 2].flatMap((n) => FILLS.map((f) => `${n}/${f}/${SMOKE_WORKLOAD}`)).sort(),
    );
    for (const c of rep.comparisons) {
      const at = `round ${c.round} ${c.fill}: ${JSON.stringify(c.errors)}`;
      expect([...c.order].sort(), at).toEqual([...TARGETS].sort());
      expect(c.errors, at).toEqual({});
      expect(Object.keys(c.runs).sort(), at).toEqual([...TARGETS].sort());
      for (const t of TARGETS) expect(c.runs[t]?.iops, `${at} ${t}`).toBeGreaterThan(0);
    }
    // Rotation: the same comparison starts with a different target in the next round.
    for (const f of FILLS) {
      const [c1, c2] = [1, 2].map((n) => rep.comparisons.find((c) => c.fill === f && c.round === n));
      expect(c2?.order).toEqual([...(c1?.order.slice(1) ?? []), c1?.order[0]]);
    }
  });

  it('gives every row its per-round runs and ratios taken inside each round', () => {
    expect(rep.rows.map((x) => `${x.fill}/${x.workload}/${x.target}`).sort()).toEqual(
      FILLS.flatMap((f) => TARGETS.map((t) => `${f}/${SMOKE_WORKLOAD}/${t}`)).sort(),
    );
    for (const row of rep.rows) {
      const at = `${row.fill}/${row.target}`;
      expect(row.errors, at).toEqual([]);
      // qemu-nbd's cap is 16 requests per client: the control spreads QD32 over two connections.
      expect(row.shape, at).toEqual(row.target === 'qemu-nbd-qd16' ? { iodepth: 16, numjobs: 2 } : { iodepth: 32, numjobs: 1 });
      expect(row.rounds, at).toHaveLength(2);
      row.rounds.forEach((run, i) => {
        expect(run, at).toEqual(rep.comparisons.find((c) => c.fill === row.fill && c.round === i + 1)?.runs[row.target]);
        expect(run?.latP99Us, at).toBeGreaterThanOrEqual((run?.latMeanUs ?? 0) * 0.5);
        if (SERVERLESS.includes(row.target)) {
          expect(run?.cpuPerMIo, at).toBeNull();
          expect(run?.peakRssMiB, at).toBeNull();
        } else {
          expect(Number.isFinite(run?.cpuPerMIo), at).toBe(true);
          expect(run?.peakRssMiB, at).toBeGreaterThan(0);
          expect(run?.peakRssMiB, at).toBeLessThan(4096);
        }
      });
      expect(Object.keys(row.vs).sort(), at).toEqual(TARGETS.filter((t) => t !== row.target).sort());
      for (const [ref, ratios] of Object.entries(row.vs)) {
        const theirs = rep.rows.find((x) => x.fill === row.fill && x.target === ref);
        for (const m of ['iops', 'latMeanUs'] as const) {
          const s = ratios[m];
          expect(s, `${at} vs ${ref} ${m}`).not.toBeNull();
          if (s === null) continue;
          expect(s.n).toBe(2);
          s.perRound.forEach((v, i) => {
            expect(v, `${at} vs ${ref} ${m} round ${i + 1}`).toBeCloseTo((row.rounds[i]?.[m] ?? NaN) / (theirs?.rounds[i]?.[m] ?? NaN), 9);
          });
          expect(s.median).toBeCloseTo(medianOf(s.perRound.filter((v): v is number => v !== null)), 9);
          expect(s.min).toBeLessThanOrEqual(s.median);
          expect(s.max).toBeGreaterThanOrEqual(s.median);
        }
      }
    }
  });

  it('judges every performance goal (GOALS) for each image kind, measured where its workload ran', () => {
    expect(rep.goals.map((g) => `${g.subject}/${g.fill}/${g.id}`).sort()).toEqual(
      SUBJECTS.flatMap((s) => FILLS.flatMap((f) => GOAL_IDS.map((g) => `${s}/${f}/${g}`))).sort(),
    );
    for (const g of rep.goals) {
      const ran = g.items.some((i) => i.workload === SMOKE_WORKLOAD);
      expect(g.met === null, `${g.fill}/${g.id}`).toBe(!ran);
      if (!ran) continue;
      const item = g.items.find((i) => i.workload === SMOKE_WORKLOAD);
      const ratio = rep.rows.find((x) => x.fill === g.fill && x.workload === SMOKE_WORKLOAD && x.target === g.subject)?.vs[g.ref ?? '']
        ?.iops;
      expect(item?.value).toEqual(ratio);
      expect(g.met).toBe((ratio?.median ?? NaN) >= g.threshold);
      expect(item?.roundsMet).toBe(ratio?.perRound.filter((v) => v !== null && v >= g.threshold).length);
    }
  });

  it('writes performance.md from the JSON alone, with the targets, every row and the ratios with their ranges', async () => {
    const md = fs.readFileSync(path.join(out, 'performance.md'), 'utf8');
    expect(md).toMatch(/^# Performance\n/);
    expect(md).toContain('](performance.png)');
    expect(md).toContain('smoke run');
    expect(md).toContain('MAX_NBD_REQUESTS');
    expect(md).toContain('shorter than the method asks');
    const lines = md.split('\n');
    for (const t of TARGETS)
      expect(
        lines.some((l) => l.startsWith(`- **${rep.targets[t]?.label ?? '?'}**: `)),
        t,
      ).toBe(true);
    // One line per judged row and image kind, a "median (min-max)" ratio to each of the other rows.
    const aionbdLines = lines.filter((l) => l.startsWith(`| ${SMOKE_LABEL} | IOPS | `));
    expect(aionbdLines).toHaveLength(SUBJECTS.length * FILLS.length);
    for (const l of aionbdLines) expect(l.match(/\d+\.\d\dx \(\d+\.\d\d-\d+\.\d\d\)/g), l).toHaveLength(TARGETS.length - 1);
    for (const f of FILLS) {
      for (const t of TARGETS) {
        expect(
          lines.filter((l) => l.startsWith(`| ${f} | ${SMOKE_LABEL} | ${rep.targets[t]?.label ?? '?'} | `)),
          `${f} ${t}`,
        ).toHaveLength(1);
      }
      for (const t of SUBJECTS)
        expect(
          lines.filter((l) => l.startsWith(`| ${rep.targets[t]?.label ?? '?'} | ${f} | 4k randread/randwrite QD32, 1 core busy: `)),
          `${f} ${t}`,
        ).toHaveLength(2);
    }
    // --render of the JSON into another directory writes the same page: nothing else feeds it.
    const again = path.join(base, 'again');
    const rr = await run(process.execPath, [BENCH, '--render', path.join(out, 'performance.json'), '--out-dir', again], {
      timeoutMs: 60_000,
    });
    expect(rr.code, explain(rr)).toBe(0);
    expect(fs.readFileSync(path.join(again, 'performance.md'), 'utf8')).toBe(md);
  }, 90_000);

  it('writes performance.png, a real picture of readable size', () => {
    const png = fs.readFileSync(path.join(out, 'performance.png'));
    const { width, height } = pngSize(png);
    expect(width).toBeGreaterThanOrEqual(600);
    expect(height).toBeGreaterThanOrEqual(200);
    expect(png.length).toBeGreaterThan(5_000);
  });
});

describe('bench report arithmetic', () => {
  const load = async <T>(rel: string): Promise<T> => (await import(path.join(REPO_ROOT, 'scripts', 'bench', rel))) as T;

  it('takes each ratio inside a round: the median of per-round ratios, not the ratio of medians', async () => {
    const { buildRows, checkGoals } = await load<ReportModule>('report.mjs');
    const { workloadById } = await load<WorkloadsModule>('workloads.mjs');
    const w = workloadById('randread-4k-qd32');
    const runOf = (iops: number): Run => ({
      iops,
      mibps: iops / 256,
      latMeanUs: (1e6 * 32) / iops,
      latP99Us: (2e6 * 32) / iops,
      cpuPerMIo: null,
      peakRssMiB: null,
    });
    // aionbd 100/60/50 and libaio 100/50/100: ratios 1.0, 1.2, 0.5 (median 1.0); medians 60/100 = 0.6.
    const pairs = [
      [100, 100],
      [60, 50],
      [50, 100],
    ] as const;
    const comparisons: Comparison[] = pairs.map(([a, l], i) => ({
      round: i + 1,
      fill: 'direct',
      workload: 'randread-4k-qd32',
      order: ['aionbd', 'libaio'],
      runs: { aionbd: runOf(a), libaio: runOf(l) },
      errors: {},
    }));
    const rows = buildRows(comparisons, { rounds: 3, fills: ['direct'], workloads: [w], targets: ['aionbd', 'libaio'] });
    const s = rows.find((x) => x.target === 'aionbd')?.vs['libaio']?.iops;
    expect(s?.perRound).toEqual([1, 1.2, 0.5]);
    expect(s).toMatchObject({ median: 1, min: 0.5, max: 1.2, n: 3 });
    expect(rows.find((x) => x.target === 'aionbd')?.absolute?.iops?.median).toBe(60);
    const goal = checkGoals(rows, ['direct']).find((g) => g.id === 'qd32-libaio');
    expect(goal).toMatchObject({ met: true, partial: true, judgedOn: 'median' });
    expect(goal?.items[0]?.roundsMet).toBe(2);
    // A failed run leaves its round out of the ratio, not the row.
    const partial = comparisons.map((c) =>
      c.round === 2 ? { ...c, runs: { libaio: c.runs['libaio'] as Run }, errors: { aionbd: 'x' } } : c,
    );
    const p = buildRows(partial, { rounds: 3, fills: ['direct'], workloads: [w], targets: ['aionbd', 'libaio'] }).find(
      (x) => x.target === 'aionbd',
    );
    expect(p?.vs['libaio']?.iops).toMatchObject({ perRound: [1, null, 0.5], n: 2, median: 0.75 });
    expect(p?.errors).toEqual(['round 2: x']);
  });

  it("a full run includes the job of SPDK's AIO guide, with the guide's options over NBD", async () => {
    const { DEFAULT_WORKLOADS, workloadById } = await load<WorkloadsModule & { DEFAULT_WORKLOADS: readonly string[] }>('workloads.mjs');
    const { fioArgs } = await load<{
      fioArgs(w: unknown, shape: { iodepth: number; numjobs: number }, on: { uri: string }, t: { runtime: number; ramp: number }): string[];
    }>('fio.mjs');
    expect(DEFAULT_WORKLOADS).toContain('randrw70-4k-qd32');
    const args = fioArgs(
      workloadById('randrw70-4k-qd32'),
      { iodepth: 32, numjobs: 1 },
      { uri: 'nbd+unix:///x?socket=/s' },
      { runtime: 60, ramp: 0 },
    );
    for (const a of [
      '--ioengine=nbd',
      '--rw=randrw',
      '--rwmixread=70',
      '--bs=4096',
      '--iodepth=32',
      '--randrepeat=0',
      '--time_based',
      '--runtime=60000ms',
    ]) {
      expect(args).toContain(a);
    }
  });

  it('rotates the order so that each target runs in each position', async () => {
    const { rotated } = await load<PlanModule>('plan.mjs');
    const ids = ['a', 'b', 'c'];
    const firsts = [0, 1, 2].map((r) => rotated(ids, r, 0)[0]);
    expect(firsts.sort()).toEqual(ids);
    for (let r = 0; r < 4; r++) expect([...rotated(ids, r, 1)].sort()).toEqual(ids);
  });
});

describe.skipIf(!has)('bench script failures', () => {
  it('a bad option is one line on stderr and exit 2', async () => {
    for (const args of [
      ['--targets', 'bogus'],
      ['--fills', 'bogus'],
      ['--scale-connections', 'bogus'],
    ]) {
      const r = await run(process.execPath, [BENCH, ...args], { timeoutMs: 30_000 });
      expect(r.code, explain(r)).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain('bogus');
    }
  });

  it('--help says how long a full run takes and names every row and both kinds of image', async () => {
    const r = await run(process.execPath, [BENCH, '--help'], { timeoutMs: 30_000 });
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout).toMatch(/A full run \(5 rounds x 2 image kinds x 10 workloads .*\) takes about \d+(\.\d)? (min|h)\b/);
    for (const t of TARGETS) expect(r.stdout).toContain(t);
    for (const f of FILLS) expect(r.stdout).toContain(f);
  });

  it('--render of a JSON of the old format is one line and exit 1, writing nothing', async () => {
    const base = tmpDir('aionbd-bench-old-');
    try {
      const old = path.join(base, 'performance.json');
      fs.writeFileSync(old, JSON.stringify({ settings: { repeat: 3 }, rows: [] }));
      const r = await run(process.execPath, [BENCH, '--render', old, '--out-dir', path.join(base, 'out')], { timeoutMs: 30_000 });
      expect(r.code, explain(r)).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain('paired-round');
      expect(fs.existsSync(path.join(base, 'out'))).toBe(false);
    } finally {
      rmrf(base);
    }
  });

  it('SIGINT mid-run stops the servers and the CPU hog and removes the work directory', async () => {
    const base = tmpDir('aionbd-bench-int-');
    try {
      const work = path.join(base, 'work');
      const child = spawn(
        process.execPath,
        [
          BENCH,
          '--smoke',
          '--no-install',
          '--targets',
          'aionbd,qemu-nbd',
          '--fills',
          'direct',
          '--runtime',
          '5',
          '--out-dir',
          path.join(base, 'out'),
          '--tmp-dir',
          work,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (s: string) => {
        stderr += s;
      });
      const exited = new Promise<number | null>((resolve) => {
        child.once('close', (code) => resolve(code));
      });
      let done = false;
      void exited.then(() => {
        done = true;
      });
      // Signal once fio runs against a live aionbd (each run lasts 5 s): poll, bounded.
      let running = false;
      for (let i = 0; i < 600 && !done && !running; i++) {
        const procs = processesUsing(work);
        running = procs.some((p) => p.includes('aionbd.js serve')) && procs.some((p) => p.includes('--ioengine=nbd'));
        if (!running) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(running, stderr).toBe(true);
      // Let fio connect, then interrupt as a terminal's ctrl-C would.
      await new Promise((resolve) => setTimeout(resolve, 500));
      child.kill('SIGINT');
      const code = await Promise.race([exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000))]);
      if (code === 'timeout') child.kill('SIGKILL');
      expect(code, stderr).toBe(130);
      expect(processesUsing(work)).toEqual([]);
      expect(fs.readdirSync(work)).toEqual([]);
      expect(fs.existsSync(path.join(base, 'out', 'performance.md'))).toBe(false);
    } finally {
      rmrf(base);
    }
  }, 90_000);
});
