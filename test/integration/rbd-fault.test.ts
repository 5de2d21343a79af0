// A cluster fault is an I/O error, not a hang: with the test cluster's only OSD stopped in the
// middle of a write load, requests to the RBD export fail with EIO within the configured
// timeout (timeout=SEC sets rados_osd_op_timeout), an AIO export of the same server goes on
// answering at once, and the RBD export works again, data intact, once the OSD is back.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CephCluster } from '../../src/testing/ceph.js';
import { haveCeph, imageName, sharedCeph } from '../helpers/ceph.js';
import { explain, run, type RunResult } from '../helpers/run.js';
import { startServer, stopAllServers, type TestServer } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';

const have = haveCeph() && tool('qemu-io', 'fio');
/** rados_osd_op_timeout of the export under test, in seconds. */
const TIMEOUT_S = 4;
/** What a failure may take beyond the timeout: qemu-io's start, the server, a loaded machine. */
const SLACK_MS = 6_000;

function qemuIo(uri: string, cmds: string[], timeoutMs = 60_000): Promise<RunResult> {
  return run('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri], { timeoutMs });
}

describe.skipIf(!have)('RBD with the OSD stopped', () => {
  let ceph: CephCluster;
  let dir: string;
  let srv: TestServer;

  beforeAll(async () => {
    ceph = await sharedCeph();
    dir = tmpDir('aionbd-rbdf-');
    const img = imageName('fault');
    await ceph.createImage(img, '32M');
    srv = await startServer({
      rawArgs: [
        '--listen',
        `unix:${path.join(dir, 'nbd.sock')}`,
        '--no-rpc',
        '--log-level',
        'info',
        '--rbd',
        `${ceph.pool}/${img},conf=${ceph.conf},name=r,timeout=${TIMEOUT_S}`,
        '--aio',
        `${path.join(dir, 'local.img')},name=local,size=16M`,
      ],
      exports: 2,
      timeoutMs: 60_000,
    });
  }, 120_000);

  afterAll(async () => {
    // Whatever happened, the shared cluster gets its OSD back for the files after this one.
    if (ceph !== undefined && !ceph.osdRunning()) await ceph.startOsd();
    await stopAllServers();
    if (dir !== undefined) rmrf(dir);
  }, 120_000);

  it('EIO within the timeout mid-load, other bdevs served meanwhile, recovery after the OSD restarts', async () => {
    const w = await qemuIo(srv.uri('r'), ['write -P 0x42 0 1M']);
    expect(w.code, explain(w)).toBe(0);

    // A write load, then the OSD goes away under it: fio stops at its first error.
    const load = run(
      'fio',
      [
        '--name=load',
        '--ioengine=nbd',
        `--uri=${srv.uri('r')}`,
        '--rw=randwrite',
        '--bs=4k',
        '--iodepth=16',
        '--offset=8M',
        '--size=16M',
        '--time_based',
        '--runtime=60',
        '--output-format=json',
      ],
      { timeoutMs: 120_000, cwd: dir },
    );
    await new Promise((r) => setTimeout(r, 1_500));
    const stopAt = Date.now();
    await ceph.stopOsd();

    const stopped = Date.now() - stopAt;
    const fio = await load;
    const fioEnded = Date.now() - stopAt;
    expect(fio.code, explain(fio)).not.toBe(0);
    expect(fio.stdout + fio.stderr).toMatch(/Input\/output error|error=5|err= ?5/i);
    expect(fioEnded).toBeLessThan(stopped + TIMEOUT_S * 1000 + SLACK_MS);

    // With the OSD down: a read and a write each fail with EIO in bounded time, while the
    // AIO export of the same server answers at once.
    const t0 = Date.now();
    const rbdRead = qemuIo(srv.uri('r'), ['read -P 0x42 0 64k']).then((r) => ({ r, ms: Date.now() - t0 }));
    const local = await qemuIo(srv.uri('local'), ['write -P 0x33 0 1M', 'read -P 0x33 0 1M']);
    const localMs = Date.now() - t0;
    expect(local.code, explain(local)).toBe(0);
    expect(local.stdout).not.toMatch(/Pattern verification failed/);
    const { r: failed, ms } = await rbdRead;
    expect(localMs).toBeLessThan(ms);
    expect(failed.stdout + failed.stderr, explain(failed)).toMatch(/Input\/output error/);
    expect(ms).toBeLessThan(TIMEOUT_S * 1000 + SLACK_MS);
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_S * 1000 - 500);
    const t1 = Date.now();
    const wfail = await qemuIo(srv.uri('r'), ['write -P 0x43 2M 64k']);
    expect(wfail.stdout + wfail.stderr, explain(wfail)).toMatch(/Input\/output error/);
    expect(Date.now() - t1).toBeLessThan(TIMEOUT_S * 1000 + SLACK_MS);
    expect(srv.proc.exitCode).toBeNull();

    // The OSD comes back (memstore kept its objects): the same export reads what was written.
    await ceph.startOsd();
    let ok: RunResult | null = null;
    for (const until = Date.now() + 60_000; Date.now() < until; ) {
      const r = await qemuIo(srv.uri('r'), ['read -P 0x42 0 1M', 'write -P 0x44 4M 64k', 'read -P 0x44 4M 64k']);
      if (r.code === 0 && !/Pattern verification failed|error/i.test(r.stdout + r.stderr)) {
        ok = r;
        break;
      }
      await new Promise((res) => setTimeout(res, 1_000));
    }
    expect(ok, 'the RBD export never recovered').not.toBeNull();
    expect(srv.stderr).toMatch(/rbd I\/O failed/);
    expect(srv.stderr).toMatch(/rbd I\/O succeeds again/);
  }, 240_000);
});
