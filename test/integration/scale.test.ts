// Many AIO bdevs in one server: they share the process's one AIO engine, so 2,000
// bdevs and their exports take a few kernel AIO contexts, not one each, and deleting them gives
// every context and fd back. I/O on one of many still verifies, and bdevs driven at once share
// the engine fairly.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aioContexts } from '../helpers/aio.js';
import { explain, run, type RunResult } from '../helpers/run.js';
import { REPO_ROOT } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';
import { makeFile, startTarget, type RpcTarget } from '../rpc/target.js';

const MiB = 1 << 20;
const has = { nbdinfo: tool('nbdinfo'), fio: tool('fio') };

interface Probe {
  rssKiB: number;
  fds: number;
  contexts: number;
  aioNr: number;
}
interface ScaleResult {
  created: number;
  error: string | null;
  createSec: number;
  listed: number | null;
  deleteSec: number;
  before: Probe;
  peak: Probe;
  after: Probe;
}
interface RpcSession {
  call(method: string, params: unknown): Promise<unknown>;
  close(): void;
}
interface ScaleModule {
  scaleBdevs(p: { root: string; count: number; tmpDir: string; say: (line: string) => void }): Promise<ScaleResult>;
  rpcSession(sock: string): Promise<RpcSession>;
}
// The benchmark's own code (npm run bench -- --scale N), so that what it prints is tested too.
const scale = async (): Promise<ScaleModule> => (await import(path.join(REPO_ROOT, 'scripts', 'bench', 'scale_bdevs.mjs'))) as ScaleModule;

interface FioJob {
  jobname: string;
  error: number;
  read: { io_bytes: number; iops: number };
  write: { io_bytes: number };
}
function fioJobs(r: RunResult): FioJob[] {
  const at = r.stdout.indexOf('{');
  expect(at, explain(r)).toBeGreaterThanOrEqual(0);
  return (JSON.parse(r.stdout.slice(at)) as { jobs: FioJob[] }).jobs;
}

describe.skipIf(!has.nbdinfo)('2,000 AIO bdevs with exports, over JSON-RPC', () => {
  it('are created and listed on a few AIO contexts, and deleting them returns every context and fd', async () => {
    const dir = tmpDir('aionbd-scale-');
    try {
      const lines: string[] = [];
      const r = await (await scale()).scaleBdevs({ root: REPO_ROOT, count: 2000, tmpDir: dir, say: (l) => lines.push(l) });
      expect(r.error, lines.join('\n')).toBeNull();
      expect(r.created).toBe(2000);
      expect(r.listed, lines.join('\n')).toBe(2000); // nbdinfo --list: two options per export, on one connection
      // One engine: a handful of contexts (4096 events) instead of 2,000 of 128.
      expect(r.peak.contexts - r.before.contexts).toBeGreaterThan(0);
      expect(r.peak.contexts - r.before.contexts).toBeLessThanOrEqual(6);
      expect(r.peak.aioNr - r.before.aioNr).toBeLessThan((2000 * 128) / 10); // machine-wide, so only loosely
      expect(r.peak.fds - r.before.fds).toBeLessThanOrEqual(2000 + 2); // one per image, the eventfd, the RPC connection
      expect(r.after.contexts).toBe(r.before.contexts);
      expect(r.after.fds).toBe(r.before.fds);
    } finally {
      rmrf(dir);
    }
  }, 90_000);
});

describe.skipIf(!has.fio)('fio on bdevs of a server with many', () => {
  let t: RpcTarget;
  let rpc: RpcSession;
  const names: string[] = [];
  beforeAll(async () => {
    t = await startTarget();
    rpc = await (await scale()).rpcSession(t.rpcSock);
    for (let i = 0; i < 505; i++) {
      const f = makeFile(t.file(`m${i}.img`), (i < 5 ? 32 : 1) * MiB);
      await rpc.call('bdev_aio_create', { filename: f, name: `m${i}` });
      await rpc.call('nbd_export_add', { bdev_name: `m${i}` });
      names.push(`m${i}`);
    }
  }, 60_000);
  afterAll(async () => {
    rpc.close();
    await t.cleanup();
  });

  it('I/O on one bdev while 500 others exist verifies with crc32c', async () => {
    expect(aioContexts(t.proc.pid ?? 0)).toBeLessThanOrEqual(6);
    const r = await run(
      'fio',
      [
        '--name=one',
        '--ioengine=nbd',
        `--uri=${t.uri('m0')}`,
        '--rw=randrw',
        '--bs=4k',
        '--iodepth=32',
        '--size=16M',
        '--verify=crc32c',
        '--verify_fatal=1',
        '--verify_state_save=0',
        '--runtime=30',
        '--output-format=json',
      ],
      { timeoutMs: 60_000, cwd: t.dir },
    );
    expect(r.code, explain(r)).toBe(0);
    const [job] = fioJobs(r);
    expect(job?.error).toBe(0);
    expect(job?.write.io_bytes).toBeGreaterThan(0);
    expect(r.stderr).not.toMatch(/verify|error/i);
  }, 90_000);

  it('4 bdevs driven at once each get a fair share of the engine', async () => {
    // One fio, one job (and connection) per bdev, all at QD32 for the same 3 s.
    const jobs = [1, 2, 3, 4].flatMap((i) => [`--name=b${i}`, `--uri=${t.uri(`m${i}`)}`]);
    const r = await run(
      'fio',
      [
        '--ioengine=nbd',
        '--rw=randread',
        '--bs=4k',
        '--iodepth=32',
        '--size=32M',
        '--time_based',
        '--runtime=3',
        '--output-format=json',
        ...jobs,
      ],
      { timeoutMs: 60_000, cwd: t.dir },
    );
    expect(r.code, explain(r)).toBe(0);
    const iops = fioJobs(r).map((j) => j.read.iops);
    expect(iops).toHaveLength(4);
    const mean = iops.reduce((a, b) => a + b, 0) / iops.length;
    for (const x of iops) expect(x, `IOPS of the 4 jobs: ${iops.map(Math.round).join(', ')}`).toBeGreaterThanOrEqual(mean / 2);
  }, 90_000);
});
