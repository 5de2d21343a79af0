// The benchmark script (`npm run bench`) in its --smoke mode: a few seconds, a 64M image, two
// workloads, every target. It proves the script runs end to end and writes well-formed
// outputs; it asserts no timing, only that each number is there and sane.
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

const SMOKE_WORKLOADS = [['randread-4k-qd32', '4k randread QD32'], ['write-1m-qd8', '1M seq write QD8']] as const;
const TARGETS = [['aionbd', 'aionbd'], ['qemu-nbd', 'qemu-nbd'], ['nbdkit', 'nbdkit'], ['libaio', 'fio libaio']] as const;

interface Metrics {
  iops: number; mibps: number; latMeanUs: number; latP99Us: number;
  cpuPerMIo: number | null; peakRssMiB: number | null; clientCpuPct: number;
}
interface Ratios { iops: number; mibps: number; latMeanUs: number; latP99Us: number; cpuPerMIo: number | null; peakRssMiB: number | null }
interface Row {
  workload: string; workloadLabel: string; target: string; targetLabel: string;
  runs: unknown[]; errors: string[]; median: Metrics | null; vsQemuNbd: Ratios | null; vsLibaio: Ratios | null;
}
interface Report {
  generated: string; command: string; settings: { mode: string; repeat: number; size: number };
  machine: Record<string, string | number>; rows: Row[];
  goals: { goal: string; measured: string; met: boolean | null }[]; durationSec: number;
}

/** Processes whose command line mentions `dir` (a server or fio the benchmark left behind). */
function processesUsing(dir: string): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    let cmd: string;
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue; // the process exited while we looked
    }
    if (cmd.includes(dir)) found.push(`${pid}: ${cmd}`);
  }
  return found;
}

/** PNG width and height from its IHDR chunk, after checking the signature. */
function pngSize(buf: Buffer): { width: number; height: number } {
  expect(buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  expect(buf.toString('latin1', 12, 16)).toBe('IHDR');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

describe.skipIf(!has)('npm run bench -- --smoke', () => {
  let base: string;
  let out: string;
  let work: string;
  let r: RunResult;
  const docsMd = path.join(REPO_ROOT, 'docs', 'performance.md');
  const docsBefore = fs.existsSync(docsMd) ? fs.statSync(docsMd).mtimeMs : null;
  beforeAll(async () => {
    base = tmpDir('aionbd-bench-test-');
    out = path.join(base, 'out');
    work = path.join(base, 'work');
    r = await run(process.execPath, [BENCH, '--smoke', '--no-install', '--out-dir', out, '--tmp-dir', work], { timeoutMs: 150_000 });
  }, 180_000);
  afterAll(() => { rmrf(base); });

  it('exits 0, stops every server and removes its image and sockets', () => {
    expect(r.code, explain(r)).toBe(0);
    expect(processesUsing(work)).toEqual([]);
    expect(fs.readdirSync(work)).toEqual([]);
    // The smoke run writes only where it was told: the committed docs/ come from a full run.
    expect(fs.existsSync(docsMd) ? fs.statSync(docsMd).mtimeMs : null).toBe(docsBefore);
  });

  it('writes performance.json with a sane row per (workload, target)', () => {
    const rep = JSON.parse(fs.readFileSync(path.join(out, 'performance.json'), 'utf8')) as Report;
    expect(rep.settings).toMatchObject({ mode: 'smoke', repeat: 1, size: 64 << 20 });
    expect(rep.command).toContain('--smoke');
    expect(rep.machine['cores']).toBeGreaterThan(0);
    expect(rep.rows.map((x) => `${x.workload}/${x.target}`).sort())
      .toEqual(SMOKE_WORKLOADS.flatMap(([w]) => TARGETS.map(([t]) => `${w}/${t}`)).sort());
    for (const row of rep.rows) {
      const at = `${row.workload}/${row.target}: ${row.errors.join('; ')}`;
      expect(row.errors, at).toEqual([]);
      expect(row.runs, at).toHaveLength(1);
      const m = row.median;
      expect(m, at).not.toBeNull();
      if (m === null) continue;
      expect(m.iops, at).toBeGreaterThan(0);
      expect(m.mibps, at).toBeGreaterThan(0);
      expect(m.latMeanUs, at).toBeGreaterThan(0);
      expect(m.latP99Us, at).toBeGreaterThanOrEqual(m.latMeanUs * 0.5);
      if (row.target === 'libaio') {
        expect(m.cpuPerMIo, at).toBeNull();
        expect(m.peakRssMiB, at).toBeNull();
      } else {
        expect(m.cpuPerMIo, at).toBeGreaterThanOrEqual(0);
        expect(Number.isFinite(m.cpuPerMIo), at).toBe(true);
        expect(m.peakRssMiB, at).toBeGreaterThan(0);
        expect(m.peakRssMiB, at).toBeLessThan(4096);
      }
      // The ratios are this row over the reference row of the same workload.
      const q = rep.rows.find((x) => x.workload === row.workload && x.target === 'qemu-nbd')?.median;
      const l = rep.rows.find((x) => x.workload === row.workload && x.target === 'libaio')?.median;
      expect(row.vsQemuNbd?.iops, at).toBeCloseTo(m.iops / (q?.iops ?? NaN), 6);
      expect(row.vsLibaio?.iops, at).toBeCloseTo(m.iops / (l?.iops ?? NaN), 6);
      expect(row.vsLibaio?.latMeanUs, at).toBeCloseTo(m.latMeanUs / (l?.latMeanUs ?? NaN), 6);
    }
    expect(rep.goals.length).toBeGreaterThan(0);
    for (const g of rep.goals) expect(g.measured).not.toBe('');
  });

  it('writes performance.md with the chart and a table row per (workload, target)', () => {
    const md = fs.readFileSync(path.join(out, 'performance.md'), 'utf8');
    expect(md).toMatch(/^# Performance\n/);
    expect(md).toContain('](performance.png)');
    const lines = md.split('\n');
    for (const [, wl] of SMOKE_WORKLOADS) {
      for (const [, tl] of TARGETS) {
        const row = lines.filter((l) => l.startsWith(`| ${wl} | ${tl} | `));
        expect(row, `${wl} / ${tl}`).toHaveLength(1);
        const cells = (row[0] ?? '').split(' | ');
        expect(cells.length, row[0]).toBeGreaterThanOrEqual(16);
        expect(Number((cells[2] ?? '').replace(/,/g, '')), row[0]).toBeGreaterThan(0); // IOPS
      }
    }
    expect(md).toContain('smoke run');
  });

  it('writes performance.png, a real picture of readable size', () => {
    const png = fs.readFileSync(path.join(out, 'performance.png'));
    const { width, height } = pngSize(png);
    expect(width).toBeGreaterThanOrEqual(600);
    expect(height).toBeGreaterThanOrEqual(200);
    expect(png.length).toBeGreaterThan(5_000);
  });
});

describe.skipIf(!has)('bench script failures', () => {
  it('a bad option is one line on stderr and exit 2', async () => {
    const r = await run(process.execPath, [BENCH, '--targets', 'bogus'], { timeoutMs: 30_000 });
    expect(r.code, explain(r)).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('bogus');
  });

  it('SIGINT mid-run stops the servers and removes the work directory', async () => {
    const base = tmpDir('aionbd-bench-int-');
    try {
      const work = path.join(base, 'work');
      const child = spawn(process.execPath, [BENCH, '--smoke', '--no-install', '--targets', 'aionbd,qemu-nbd',
        '--runtime', '5', '--out-dir', path.join(base, 'out'), '--tmp-dir', work], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (s: string) => { stderr += s; });
      const exited = new Promise<number | null>((resolve) => { child.once('close', (code) => resolve(code)); });
      let done = false;
      void exited.then(() => { done = true; });
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
