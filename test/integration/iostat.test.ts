// `aionbd iostat` and SPDK's histogram RPCs against fio traffic over NBD: plain lines when
// stdout is a pipe, a table redrawn in place on a pseudo-terminal (util-linux's `script`).
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { HEADER } from '../../src/cli/iostat_report.js';
import { explain, run, type RunResult } from '../helpers/run.js';
import { BIN } from '../helpers/server.js';
import { tool } from '../helpers/tools.js';
import { startTarget, type RpcTarget } from '../rpc/target.js';

const have = { fio: tool('fio'), script: tool('script') };

/** fio on an export for `seconds`, in the background; resolves with its result when it ends. */
function fioFor(t: RpcTarget, bdev: string, seconds: number): Promise<RunResult> {
  return run(
    'fio',
    [
      '--name=load',
      '--ioengine=nbd',
      `--uri=${t.uri(bdev)}`,
      '--rw=randrw',
      '--bs=4k',
      '--iodepth=8',
      '--size=32M',
      '--time_based',
      `--runtime=${seconds}`,
      '--output-format=json',
    ],
    { timeoutMs: (seconds + 30) * 1000, cwd: t.dir },
  );
}

/** Resolves once a bdev has completed some I/O (fio has connected), bounded. */
async function trafficOn(t: RpcTarget, bdev: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const s = (await t.json('bdev_get_iostat', '-b', bdev)) as { bdevs: { num_write_ops: number }[] };
    if ((s.bdevs[0]?.num_write_ops ?? 0) > 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no I/O reached ${bdev}`);
}

describe.skipIf(!have.fio)('aionbd iostat and bdev histograms under fio', () => {
  const targets: RpcTarget[] = [];
  afterEach(async () => {
    for (const t of targets.splice(0)) await t.cleanup();
  });

  async function target(): Promise<RpcTarget> {
    const t = await startTarget();
    targets.push(t);
    for (const name of ['m0', 'm1']) {
      await t.ok('bdev_malloc_create', '32', '4096', '-b', name);
      await t.ok('nbd_export_add', name);
    }
    return t;
  }

  it('plain mode: one table per interval, rates and latencies of the busy bdev only', async () => {
    const t = await target();
    const fio = fioFor(t, 'm0', 6);
    await trafficOn(t, 'm0');
    const r = await run(process.execPath, [BIN, 'iostat', '-s', t.rpcSock, '-i', '1', '-c', '2'], { timeoutMs: 20_000 });
    expect(r.code, explain(r)).toBe(0);
    // No escape sequences on a pipe: two reports, each a header, a line per bdev and an empty line.
    expect(r.stdout).not.toContain('\x1b');
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 4).map((l) => l.split(/\s+/)[0])).toEqual(['Device', 'm0', 'm1', '']);
    expect(lines.slice(4, 8).map((l) => l.split(/\s+/)[0])).toEqual(['Device', 'm0', 'm1', '']);
    expect(lines[0]?.split(/\s+/)).toEqual(HEADER);
    const col = (line: string | undefined, name: string): number => Number(line?.split(/\s+/)[HEADER.indexOf(name)]);
    for (const row of [lines[1], lines[5]]) {
      expect(col(row, 'r/s'), r.stdout).toBeGreaterThan(100);
      expect(col(row, 'w/s')).toBeGreaterThan(100);
      expect(col(row, 'rMiB/s')).toBeCloseTo((col(row, 'r/s') * 4096) / 2 ** 20, 1);
      expect(col(row, 'r_avg_us')).toBeGreaterThan(0);
      // p99 is a bucket's upper edge: never below the mean by more than a bucket.
      expect(col(row, 'r_p99_us')).toBeGreaterThanOrEqual(col(row, 'r_avg_us') * 0.9);
      expect(col(row, 'aqu')).toBeGreaterThan(0);
    }
    for (const row of [lines[2], lines[6]]) expect(col(row, 'r/s') + col(row, 'w/s')).toBe(0);
    // -b: that bdev only.
    const one = await run(process.execPath, [BIN, 'iostat', '-s', t.rpcSock, '-b', 'm1', '-i', '0.2', '-c', '1'], { timeoutMs: 20_000 });
    expect(
      one.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/)[0]),
    ).toEqual(['Device', 'm1']);
    expect((await fio).code).toBe(0);
  }, 60_000);

  it.skipIf(!have.script)(
    'on a terminal: a title and the table, redrawn in place',
    async () => {
      const t = await target();
      const fio = fioFor(t, 'm0', 6);
      await trafficOn(t, 'm0');
      const cmd = `${process.execPath} ${BIN} iostat -s ${t.rpcSock} -i 0.5 -c 3`;
      const r = await run('script', ['-qfec', cmd, '/dev/null'], { timeoutMs: 20_000 });
      expect(r.code, explain(r)).toBe(0);
      const out = r.stdout.replace(/\r/g, '');
      expect(out.match(/aionbd iostat {2}\d\d:\d\d:\d\d {2}every 0\.5 s/g)).toHaveLength(3);
      // Each report after the first goes back over the 4 lines before it (title, header, m0, m1) and clears.
      expect(out.split('\x1b[4A\x1b[J')).toHaveLength(3);
      const last = out.slice(out.lastIndexOf('\x1b[J') + 3).split('\n');
      expect(last[1]?.split(/\s+/)).toEqual(HEADER);
      expect(Number(last[2]?.split(/\s+/)[1])).toBeGreaterThan(100);
      expect((await fio).code).toBe(0);
    },
    60_000,
  );

  it("bdev_enable_histogram -o write counts every write, in SPDK's shape; disabled, get fails", async () => {
    const t = await target();
    const none = await t.rpc('bdev_get_histogram', 'm0');
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^aionbd: .*histogram of bdev "m0" is not enabled/);
    expect(await t.ok('bdev_enable_histogram', 'm0', '--histogram', '-o', 'write')).toBe('true');
    expect((await fioFor(t, 'm0', 2)).code).toBe(0);
    const h = (await t.json('bdev_get_histogram', 'm0')) as {
      histogram: string;
      granularity: number;
      min_range: number;
      max_range: number;
      tsc_rate: number;
    };
    expect(h).toMatchObject({ granularity: 7, min_range: 3, max_range: 30, tsc_rate: 1e9 });
    const bytes = Buffer.from(h.histogram, 'base64');
    expect(bytes.length).toBe((h.max_range - h.min_range + 1) * 128 * 8);
    let total = 0n;
    for (let i = 0; i < bytes.length; i += 8) total += bytes.readBigUInt64LE(i);
    const st = (await t.json('bdev_get_iostat', '-b', 'm0')) as { bdevs: { num_write_ops: number; num_read_ops: number }[] };
    expect(Number(total)).toBe(st.bdevs[0]?.num_write_ops);
    expect(st.bdevs[0]?.num_read_ops).toBeGreaterThan(0); // reads ran too, and were not counted
    // save_config keeps it (SPDK's entry: name, enable, opc).
    expect(await t.ok('save_config')).toContain(
      '"method": "bdev_enable_histogram",\n          "params": {\n            "name": "m0",\n            "enable": true,\n            "opc": "write"',
    );
    await t.ok('bdev_enable_histogram', 'm0', '--no-histogram');
    expect((await t.rpc('bdev_get_histogram', 'm0')).code).toBe(1);
  }, 60_000);

  it('Ctrl-C ends a running iostat with exit 0; a missing bdev is one line and exit 1', async () => {
    const t = await target();
    const child = spawn(process.execPath, [BIN, 'iostat', '-s', t.rpcSock, '-i', '0.2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    for (let i = 0; i < 100 && !out.includes('Device'); i++) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    const r = await run(process.execPath, [BIN, 'iostat', '-s', t.rpcSock, '-b', 'nope', '-c', '1'], { timeoutMs: 20_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^aionbd: .*bdev "nope" does not exist\n$/);
  }, 60_000);
});
