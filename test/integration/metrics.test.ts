// The Prometheus endpoint: scraped by a real Prometheus (Debian's package, started here on
// loopback with a 1 s scrape interval and its storage in a temp dir) while fio runs over NBD,
// then asked through its HTTP query API for the bdev's rates. Also the embedded API's endpoint.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { Server } from '../../src/server.js';
import { explain, run } from '../helpers/run.js';
import { BIN, freePort } from '../helpers/server.js';
import { tool } from '../helpers/tools.js';
import { startTarget, type RpcTarget } from '../rpc/target.js';

const have = { fio: tool('fio'), prometheus: tool('prometheus') };

async function get(url: string): Promise<{ status: number; text: string }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { status: r.status, text: await r.text() };
}

/** Calls fn every 250 ms until it returns a value (not undefined), for at most `ms`. */
async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown = null;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err; // not up yet: try again until the time is over
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not within ${ms} ms${last !== null ? ` (last error: ${String(last)})` : ''}`);
}

interface QueryResult {
  status: string;
  data: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe.skipIf(!have.fio || !have.prometheus)('--metrics scraped by Prometheus', () => {
  const targets: RpcTarget[] = [];
  let prom: ChildProcess | null = null;
  let promLog = '';
  afterEach(async () => {
    if (prom !== null && prom.exitCode === null) {
      const p = prom;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (p.exitCode === null) p.kill('SIGKILL');
    }
    prom = null;
    for (const t of targets.splice(0)) await t.cleanup();
  });

  it('after fio traffic, the query API gives non-zero rates and latencies for the bdev under test', async () => {
    const mport = await freePort();
    const t = await startTarget({ args: ['--metrics', `tcp://127.0.0.1:${mport}`] });
    targets.push(t);
    await t.ok('bdev_malloc_create', '32', '4096', '-b', 'm0');
    await t.ok('nbd_export_add', 'm0');
    expect((await get(`http://127.0.0.1:${mport}/metrics`)).text).toMatch(/^aionbd_export_connections\{export="m0",bdev="m0"\} 0$/m);

    const pport = await freePort();
    fs.writeFileSync(
      t.file('prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: aionbd',
        '    scrape_timeout: 1s',
        '    static_configs:',
        `      - targets: ['127.0.0.1:${mport}']`,
        '',
      ].join('\n'),
    );
    prom = spawn(
      'prometheus',
      [
        `--config.file=${t.file('prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(t.dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${pport}`,
      ],
      { cwd: t.dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prom.stderr?.on('data', (b: Buffer) => {
      if (promLog.length < 1 << 20) promLog += b.toString();
    });
    const api = `http://127.0.0.1:${pport}`;
    const query = async (q: string): Promise<number | undefined> => {
      const r = JSON.parse((await get(`${api}/api/v1/query?query=${encodeURIComponent(q)}`)).text) as QueryResult;
      const v = Number(r.data.result[0]?.value[1]);
      return r.status === 'success' && v > 0 ? v : undefined;
    };
    await until(`Prometheus ready\n${promLog}`, 30_000, async () => ((await get(`${api}/-/ready`)).status === 200 ? true : undefined));
    await until('a first scrape of aionbd', 20_000, () => query('up{job="aionbd"}'));

    const fio = run(
      'fio',
      [
        '--name=load',
        '--ioengine=nbd',
        `--uri=${t.uri('m0')}`,
        '--rw=randrw',
        '--bs=4k',
        '--iodepth=8',
        '--size=32M',
        '--time_based',
        '--runtime=8',
        '--output-format=json',
      ],
      { timeoutMs: 60_000, cwd: t.dir },
    );
    // While fio is connected the export counts its connection.
    await until('the fio connection in /metrics', 10_000, async () =>
      /^aionbd_export_connections\{export="m0",bdev="m0"\} 1$/m.test((await get(`http://127.0.0.1:${mport}/metrics`)).text)
        ? true
        : undefined,
    );
    const rates = await until(`non-zero rates in Prometheus\n${promLog.slice(-2000)}`, 30_000, async () => {
      const v = await Promise.all([
        query('rate(aionbd_bdev_operations_total{bdev="m0",type="read"}[5s])'),
        query('rate(aionbd_bdev_operations_total{bdev="m0",type="write"}[5s])'),
        query('rate(aionbd_bdev_bytes_total{bdev="m0",type="write"}[5s])'),
        query('histogram_quantile(0.99, rate(aionbd_bdev_latency_seconds_bucket{bdev="m0",type="read"}[5s]))'),
        query('aionbd_memory_budget_bytes'),
      ]);
      return v.every((x) => x !== undefined) ? (v as number[]) : undefined;
    });
    const [reads = 0, writes = 0, writeBytes = 0, p99 = 0] = rates;
    expect(reads).toBeGreaterThan(10);
    expect(writes).toBeGreaterThan(10);
    expect(writeBytes / writes).toBeCloseTo(4096, -2);
    expect(p99).toBeLessThan(10); // seconds
    const r = await fio;
    expect(r.code, explain(r)).toBe(0);
  }, 120_000);
});

describe('metrics endpoint of the embedded API', () => {
  it('serves /metrics until the server closes, 404 elsewhere', async () => {
    const s = new Server({ log: silentLogger() });
    const url = await s.listenMetrics('tcp://127.0.0.1:0');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    await s.createMalloc({ name: 'm0', blockSize: 512, numBlocks: 2048 });
    const m = await get(url);
    expect(m.status).toBe(200);
    expect(m.text).toMatch(/^# TYPE aionbd_bdev_latency_seconds histogram$/m);
    expect(m.text).toMatch(/^aionbd_bdev_latency_seconds_bucket\{bdev="m0",type="read",le="\+Inf"\} 0$/m);
    expect(m.text).toMatch(/^aionbd_memory_budget_bytes \d+$/m);
    expect(m.text).toMatch(/^aionbd_aio_contexts \d+$/m);
    expect(await s.metrics()).toContain('aionbd_bdev_operations_total{bdev="m0",type="read"} 0');
    expect((await get(url.replace('/metrics', '/nope'))).status).toBe(404);
    await s.close();
    await expect(get(url)).rejects.toThrow();
  });

  it('--metrics takes tcp://HOST:PORT only: anything else is one line and exit 2', async () => {
    const r = await run(process.execPath, [BIN, 'serve', '--no-rpc', '--metrics', 'unix:/tmp/m.sock'], { timeoutMs: 20_000 });
    expect(r.code, explain(r)).toBe(2);
    // A failed start logs its JSON record first (stderr is not a terminal), then the one line.
    const lines = r.stderr.trim().split('\n');
    expect(lines.length, explain(r)).toBe(2);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ level: 50 });
    expect(lines[1]).toMatch(/^aionbd: bad metrics address "unix:\/tmp\/m\.sock": use tcp:\/\/HOST:PORT/);
  });
});
