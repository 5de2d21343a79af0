// bdev_set_qos_limit measured with fio over NBD: the limited bdev runs at its limit (within 10%),
// a bdev beside it runs unlimited at the same time, and the limits survive save_config and a
// restart with --config.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { explain, run, type RunResult } from '../helpers/run.js';
import { tool } from '../helpers/tools.js';
import { startTarget, type RpcTarget } from '../rpc/target.js';

const haveFio = tool('fio');

interface FioJob {
  jobname: string;
  error: number;
  read: { iops: number; bw_bytes: number };
  write: { iops: number; bw_bytes: number };
}

function fioJobs(r: RunResult): Map<string, FioJob> {
  const at = r.stdout.indexOf('{');
  expect(r.code, explain(r)).toBe(0);
  expect(at, explain(r)).toBeGreaterThanOrEqual(0);
  const jobs = (JSON.parse(r.stdout.slice(at)) as { jobs: FioJob[] }).jobs;
  for (const j of jobs) expect(j.error, explain(r)).toBe(0);
  return new Map(jobs.map((j) => [j.jobname, j]));
}

/** One fio run of two jobs side by side: "lim" on m0 (limited) and "free" on m1. */
function fioPair(t: RpcTarget, rw: string, bs: string, seconds: number): Promise<RunResult> {
  const job = (name: string, bdev: string): string[] => [`--name=${name}`, `--uri=${t.uri(bdev)}`];
  return run(
    'fio',
    [
      '--ioengine=nbd',
      `--rw=${rw}`,
      `--bs=${bs}`,
      '--iodepth=16',
      '--size=48M',
      '--time_based',
      `--runtime=${seconds}`,
      '--output-format=json',
      ...job('lim', 'm0'),
      ...job('free', 'm1'),
    ],
    { timeoutMs: (seconds + 30) * 1000, cwd: t.dir },
  );
}

describe.skipIf(!haveFio)('bdev_set_qos_limit with fio', () => {
  const targets: RpcTarget[] = [];
  afterEach(async () => {
    for (const t of targets.splice(0)) await t.cleanup();
  });

  it('holds IOPS and MiB/s to the limit, leaves the other bdev alone, and is saved by save_config', async () => {
    const t = await startTarget();
    targets.push(t);
    for (const name of ['m0', 'm1']) {
      await t.ok('bdev_malloc_create', '64', '4096', '-b', name);
      await t.ok('nbd_export_add', name);
    }
    expect(await t.ok('bdev_set_qos_limit', 'm0', '--rw-ios-per-sec', '2000')).toBe('true');

    const iops = fioJobs(await fioPair(t, 'randread', '4k', 5));
    const lim = iops.get('lim')?.read.iops ?? 0,
      free = iops.get('free')?.read.iops ?? 0;
    expect(lim).toBeGreaterThan(2000 * 0.9);
    expect(lim).toBeLessThan(2000 * 1.1);
    expect(free).toBeGreaterThan(2 * 2000);

    // A bandwidth limit instead: rw_ios_per_sec 0 removes the first one.
    await t.ok('bdev_set_qos_limit', 'm0', '--rw-ios-per-sec', '0', '--rw-mbytes-per-sec', '20');
    const bw = fioJobs(await fioPair(t, 'randwrite', '64k', 5));
    const limMiB = (bw.get('lim')?.write.bw_bytes ?? 0) / 2 ** 20,
      freeMiB = (bw.get('free')?.write.bw_bytes ?? 0) / 2 ** 20;
    expect(limMiB).toBeGreaterThan(20 * 0.9);
    expect(limMiB).toBeLessThan(20 * 1.1);
    expect(freeMiB).toBeGreaterThan(2 * 20);

    const want = { rw_ios_per_sec: 0, rw_mbytes_per_sec: 20, r_mbytes_per_sec: 0, w_mbytes_per_sec: 0 };
    expect(await t.json('bdev_get_bdevs', '-b', 'm0')).toMatchObject([{ assigned_rate_limits: want }]);
    const cfg = await t.ok('save_config');
    const entries =
      (
        JSON.parse(cfg) as { subsystems: { subsystem: string; config: { method: string; params?: Record<string, unknown> }[] }[] }
      ).subsystems.find((s) => s.subsystem === 'bdev')?.config ?? [];
    // As SPDK: right after the bdev's own entry, with only the limits that are set.
    const at = entries.findIndex((e) => e.method === 'bdev_malloc_create' && e.params?.['name'] === 'm0');
    expect(entries[at + 1]).toEqual({ method: 'bdev_set_qos_limit', params: { name: 'm0', rw_mbytes_per_sec: 20 } });
    fs.writeFileSync(t.file('saved.json'), cfg);
    expect(await t.stop()).toBe(0);

    const t2 = await startTarget({ dir: t.dir, args: ['--config', t.file('saved.json')] });
    targets.push(t2);
    expect(await t2.json('bdev_get_bdevs', '-b', 'm0')).toMatchObject([{ assigned_rate_limits: want }]);
    expect(await t2.json('bdev_get_bdevs', '-b', 'm1')).toMatchObject([
      { assigned_rate_limits: { rw_ios_per_sec: 0, rw_mbytes_per_sec: 0 } },
    ]);
  }, 60_000);

  it('rounds rw_ios_per_sec up to a multiple of 1000 and refuses a call with no limit, as SPDK', async () => {
    const t = await startTarget();
    targets.push(t);
    await t.ok('bdev_malloc_create', '8', '512', '-b', 'm0');
    await t.ok('bdev_set_qos_limit', 'm0', '--rw-ios-per-sec', '1500');
    expect(await t.json('bdev_get_bdevs', '-b', 'm0')).toMatchObject([{ assigned_rate_limits: { rw_ios_per_sec: 2000 } }]);
    const r = await t.rpc('bdev_set_qos_limit', 'm0');
    expect(r.code, explain(r)).toBe(1);
    expect(r.stderr).toMatch(/^aionbd: .*No rate limits specified\n$/);
    // Raw JSON, as any client sends it.
    await t.ok('bdev_set_qos_limit', '{"name": "m0", "rw_ios_per_sec": 0, "r_mbytes_per_sec": 5}');
    expect(await t.json('bdev_get_bdevs', '-b', 'm0')).toMatchObject([
      { assigned_rate_limits: { rw_ios_per_sec: 0, r_mbytes_per_sec: 5 } },
    ]);
  }, 30_000);
});
