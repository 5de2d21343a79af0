// A one-node Ceph cluster for tests and benchmarks: one monitor on 127.0.0.1, one OSD on
// memstore (RAM), cephx off, pools of size 1, and everything (configuration, data, run files,
// logs, admin sockets) under one directory. No systemd: the daemons run in the foreground of
// detached processes, stopped by pid. Debian's ceph-mon, ceph-osd and ceph-common (16.2) bring
// it up in about 10 s on a 2-core machine.
//
// A cluster may outlive the process that started it (a test run shares one between files):
// state.json in its directory lets another process attach to it, and a watchdog stops the
// daemons when the owner process is gone, so a killed test run leaves nothing running.
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface CephClusterOptions {
  /** Where everything goes (created; removed by stop()). Default: a new temporary directory. */
  dir?: string;
  /** The cluster must answer within this (default 60000 ms), or start fails and cleans up. */
  timeoutMs?: number;
  /** The pool made for RBD images (default "rbd"). */
  pool?: string;
  /** RAM the OSD may use for data (default 4 GiB; only what is written is used). */
  memstoreBytes?: number;
  /** The daemons are stopped when this process is gone (default: this process). */
  ownerPid?: number;
  /** More ceph.conf [global] lines ("key = value"). */
  extraConfig?: string[];
}

export interface CephCluster {
  readonly dir: string;
  /** The ceph.conf clients use (librados's config_file, `rbd -c`). */
  readonly conf: string;
  readonly pool: string;
  /** The monitor, as `mon_host` takes it. */
  readonly monHost: string;
  /** Runs `rbd -c CONF ...args`; resolves with stdout, rejects with stderr. */
  rbd(args: string[], timeoutMs?: number): Promise<string>;
  /** Runs `ceph -c CONF ...args`. */
  ceph(args: string[], timeoutMs?: number): Promise<string>;
  /** A new image in the pool; size in bytes or with a suffix ("64M"). */
  createImage(name: string, size: number | string): Promise<void>;
  removeImage(name: string): Promise<void>;
  /** Stops the OSD cleanly (memstore writes its data to the directory) and waits for its exit. */
  stopOsd(): Promise<void>;
  /** Starts the OSD again and waits until the monitor has it up. */
  startOsd(): Promise<void>;
  osdRunning(): boolean;
  /** The OSD's pid while it runs, else null (a benchmark reads its CPU from /proc). */
  osdPid(): number | null;
  /** Stops both daemons (SIGTERM, then SIGKILL) and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

const STATE = 'state.json';
interface State {
  pool: string;
  monHost: string;
  monPid: number;
  osdPid: number;
  watchdogPid: number;
  osdId: number;
}

export class CephStartError extends Error {
  override name = 'CephStartError';
}

/** `ceph-mon`, `ceph-osd`, `ceph` and `rbd` on PATH, or the names of the packages that bring them. */
export function missingCephTools(): string[] {
  const dirs = (process.env['PATH'] ?? '').split(':').filter((d) => d !== '');
  const has = (t: string): boolean => dirs.some((d) => fs.existsSync(path.join(d, t)));
  const need: Record<string, string> = {
    'ceph-mon': 'ceph-mon',
    'ceph-osd': 'ceph-osd',
    ceph: 'ceph-common',
    rbd: 'ceph-common',
    monmaptool: 'ceph-common',
  };
  return [
    ...new Set(
      Object.entries(need)
        .filter(([t]) => !has(t))
        .map(([, p]) => p),
    ),
  ];
}

function exec(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err !== null)
        reject(new CephStartError(`${cmd} ${args.join(' ')} failed: ${stderr.trim().split('\n').slice(-3).join(' | ') || err.message}`));
      else resolve(stdout);
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => {
        resolve(port);
      });
    });
  });
}

const alive = (pid: number): boolean => {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * A daemon in the foreground of a detached process: it outlives us until stopped by pid. With
 * `pidFile` (under run/, named *.daemon) the watchdog finds it too.
 */
function daemon(cmd: string, args: string[], logFile: string, pidFile?: string): number {
  const out = fs.openSync(logFile, 'a');
  try {
    const p = spawn(cmd, args, { detached: true, stdio: ['ignore', out, out] });
    p.unref();
    if (p.pid === undefined) throw new CephStartError(`cannot start ${cmd}`);
    if (pidFile !== undefined) fs.writeFileSync(pidFile, String(p.pid));
    return p.pid;
  } finally {
    fs.closeSync(out);
  }
}

async function waitFor(what: string, deadline: number, check: () => Promise<boolean>, logHint: string): Promise<void> {
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new CephStartError(`the test Ceph cluster did not come up in time: ${what} (see ${logHint})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function killAndWait(pid: number, ms: number): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + ms;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid))
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* exited meanwhile */
    }
}

class Cluster implements CephCluster {
  readonly conf: string;
  #stopped = false;

  constructor(
    readonly dir: string,
    public state: State,
    readonly owned: boolean,
  ) {
    this.conf = path.join(dir, 'ceph.conf');
  }

  get pool(): string {
    return this.state.pool;
  }
  get monHost(): string {
    return this.state.monHost;
  }

  rbd(args: string[], timeoutMs = 60_000): Promise<string> {
    return exec('rbd', ['-c', this.conf, ...args], timeoutMs);
  }
  ceph(args: string[], timeoutMs = 30_000): Promise<string> {
    return exec('ceph', ['-c', this.conf, '--connect-timeout', '10', ...args], timeoutMs);
  }

  async createImage(name: string, size: number | string): Promise<void> {
    await this.rbd(['create', '--size', typeof size === 'number' ? `${Math.ceil(size / 2 ** 20)}M` : size, `${this.pool}/${name}`]);
  }

  async removeImage(name: string): Promise<void> {
    await this.rbd(['rm', '--no-progress', `${this.pool}/${name}`]);
  }

  osdRunning(): boolean {
    return alive(this.state.osdPid);
  }

  osdPid(): number | null {
    return this.osdRunning() ? this.state.osdPid : null;
  }

  async stopOsd(): Promise<void> {
    // A clean stop: the OSD tells the monitor it is going down and memstore saves its objects.
    await killAndWait(this.state.osdPid, 60_000);
    this.#save();
  }

  async startOsd(timeoutMs = 60_000): Promise<void> {
    if (this.osdRunning()) return;
    const id = String(this.state.osdId);
    this.state.osdPid = daemon(
      'ceph-osd',
      ['-f', '-c', this.conf, '-i', id],
      path.join(this.dir, 'log', `osd.${id}.out`),
      path.join(this.dir, 'run', 'osd.daemon'),
    );
    this.#save();
    await this.#waitOsdUp(Date.now() + timeoutMs);
  }

  async #waitOsdUp(deadline: number): Promise<void> {
    await waitFor(
      'the OSD is not up',
      deadline,
      async () => {
        if (!this.osdRunning()) throw new CephStartError('ceph-osd exited');
        const s = JSON.parse(await this.ceph(['osd', 'stat', '-f', 'json'])) as { num_up_osds?: number };
        return s.num_up_osds === 1;
      },
      path.join(this.dir, 'log'),
    );
  }

  #save(): void {
    fs.writeFileSync(path.join(this.dir, STATE), JSON.stringify(this.state));
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const s = this.state;
    await Promise.all([killAndWait(s.osdPid, 10_000), killAndWait(s.monPid, 10_000)]);
    if (s.watchdogPid > 0 && alive(s.watchdogPid))
      try {
        process.kill(s.watchdogPid, 'SIGKILL');
      } catch {
        /* gone */
      }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function confText(dir: string, fsid: string, monHost: string, memstoreBytes: number, extra: string[]): string {
  return [
    '[global]',
    `fsid = ${fsid}`,
    `mon host = ${monHost}`,
    'auth cluster required = none',
    'auth service required = none',
    'auth client required = none',
    'osd pool default size = 1',
    'osd pool default min size = 1',
    'osd pool default pg autoscale mode = off',
    'osd crush chooseleaf type = 0',
    'osd objectstore = memstore',
    `memstore device bytes = ${memstoreBytes}`,
    // Objects as sets of 4 KiB pages: with memstore's default object type (one buffer list per
    // object) `rbd bench` managed ~2.8k 4k random writes/s on this 2-core machine, with page sets
    // ~7k/s; 64 KiB pages would take 64 KiB of RAM for each random 4k write.
    'memstore page set = true',
    'memstore page size = 4096',
    // A short PG log: with Ceph's 10000 entries per PG (plus 3000 dups), the cost of each write
    // doubled over the first ~150k 4k random writes (the log filling, then trimming) and kept
    // drifting after that (`rbd bench`: 11.7k -> 6-7k writes/s), so a benchmark's later rounds
    // met another cluster than its first. With 1000 it held at ~11k over 600k writes (a slower
    // drift remains past a million). The log serves recovery between replicas and spotting a
    // resent op, which a one-OSD throwaway cluster needs at no such depth.
    'osd min pg log entries = 250',
    'osd max pg log entries = 1000',
    'osd pg log dups tracked = 1000',
    // memstore keeps its objects across a clean stop only when the OSD unmounts it.
    'osd fast shutdown = false',
    'public addr = 127.0.0.1',
    'ms bind ipv6 = false',
    `run dir = ${dir}/run`,
    // Clients keep Ceph's own socket name ($cluster-$name.$pid.$cctid.asok in the run dir): two
    // client.admin processes must not fight over one.
    `pid file = ${dir}/run/$name.pid`,
    `log file = ${dir}/log/$name.log`,
    `mon data = ${dir}/mon/$name`,
    `osd data = ${dir}/osd/$name`,
    `keyring = ${dir}/keyring`,
    // The monitor's disk checks and health warnings mean nothing for a throwaway cluster.
    'mon data avail warn = 1',
    'mon data avail crit = 0',
    'mon warn on pool no redundancy = false',
    'mon allow pool delete = true',
    ...extra,
    '[mon]',
    `admin socket = ${dir}/run/$name.asok`,
    '[osd]',
    `admin socket = ${dir}/run/$name.asok`,
    '',
  ].join('\n');
}

/** Starts a cluster; bounded by timeoutMs, and a failed start leaves nothing running. */
export async function startCephCluster(opts: CephClusterOptions = {}): Promise<CephCluster> {
  const missing = missingCephTools();
  if (missing.length > 0) throw new CephStartError(`Ceph is not installed: apt-get install ${missing.join(' ')}`);
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'aionbd-ceph-'));
  for (const d of ['run', 'log', 'mon', 'osd']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const fsid = randomUUID();
  const monHost = `v2:127.0.0.1:${await freePort()}`;
  const conf = path.join(dir, 'ceph.conf');
  fs.writeFileSync(conf, confText(dir, fsid, monHost, opts.memstoreBytes ?? 4 * 2 ** 30, opts.extraConfig ?? []));
  const state: State = { pool: opts.pool ?? 'rbd', monHost, monPid: 0, osdPid: 0, watchdogPid: 0, osdId: 0 };
  const c = new Cluster(dir, state, true);
  try {
    const t = 30_000;
    await exec('monmaptool', ['--create', '--addv', 'a', `[${monHost}]`, '--fsid', fsid, path.join(dir, 'monmap')], t);
    await exec('ceph-authtool', ['--create-keyring', path.join(dir, 'keyring'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'], t);
    await exec('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', path.join(dir, 'monmap')], t);
    state.monPid = daemon(
      'ceph-mon',
      ['-f', '-c', conf, '-i', 'a'],
      path.join(dir, 'log', 'mon.a.out'),
      path.join(dir, 'run', 'mon.daemon'),
    );
    // The watchdog: when the owner is gone, the daemons go too, whoever started the OSD last.
    const owner = opts.ownerPid ?? process.pid;
    state.watchdogPid = daemon(
      '/bin/sh',
      [
        '-c',
        `while kill -0 ${owner} 2>/dev/null; do sleep 2; done; for f in "${dir}"/run/*.daemon; do kill "$(cat "$f")" 2>/dev/null; done; ` +
          `sleep 15; for f in "${dir}"/run/*.daemon; do kill -9 "$(cat "$f")" 2>/dev/null; done; rm -rf "${dir}"`,
      ],
      '/dev/null',
    );
    fs.writeFileSync(path.join(dir, STATE), JSON.stringify(state));
    await waitFor(
      'the monitor does not answer',
      deadline,
      async () => {
        await c.ceph(['mon', 'stat'], 10_000);
        return true;
      },
      path.join(dir, 'log'),
    );
    const osdUuid = randomUUID();
    state.osdId = Number((await c.ceph(['osd', 'new', osdUuid])).trim());
    fs.mkdirSync(path.join(dir, 'osd', `osd.${state.osdId}`), { recursive: true });
    await exec('ceph-osd', ['-c', conf, '-i', String(state.osdId), '--mkfs', '--osd-uuid', osdUuid], t);
    await c.startOsd(Math.max(1_000, deadline - Date.now()));
    await c.ceph(['osd', 'pool', 'create', state.pool, '8', '8']);
    await c.rbd(['pool', 'init', state.pool]);
    fs.writeFileSync(path.join(dir, STATE), JSON.stringify(state));
    return c;
  } catch (err) {
    await c.stop();
    throw err;
  }
}

/**
 * The cluster a process started in `dir` earlier, when its daemons still run; its OSD is
 * started again if a test left it stopped. Null when there is none.
 */
export async function attachCephCluster(dir: string): Promise<CephCluster | null> {
  let state: State;
  try {
    state = JSON.parse(fs.readFileSync(path.join(dir, STATE), 'utf8')) as State;
  } catch {
    return null;
  }
  if (!alive(state.monPid) || !alive(state.watchdogPid)) return null;
  const c = new Cluster(dir, state, false);
  if (!c.osdRunning()) await c.startOsd();
  return c;
}

/** Stops a cluster started in `dir` (by any process) and removes the directory; nothing there is fine. */
export async function stopCephCluster(dir: string): Promise<void> {
  let state: State | null = null;
  try {
    state = JSON.parse(fs.readFileSync(path.join(dir, STATE), 'utf8')) as State;
  } catch {
    /* none started */
  }
  if (state !== null) await new Cluster(dir, state, false).stop();
  else fs.rmSync(dir, { recursive: true, force: true });
}
