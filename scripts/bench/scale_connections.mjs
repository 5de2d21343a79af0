// The "scale: connections" section of the benchmark: what one idle NBD connection costs the
// server, and whether that memory comes back. Not a timed test: it prints cost per unit.
//
// One `aionbd serve` child on a unix socket; N raw clients each finish the handshake
// (NBD_OPT_GO) and then stay idle. Measured from /proc/PID of the server: VmRSS and open fds
// before, with all N open, and in the seconds after they all closed.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { delay, startChild } from './procs.mjs';
import { REPO_ROOT } from './system.mjs';

/** Connections opened at once while ramping up (the listen backlog is 511). */
const OPEN_BATCH = 200;
/** How long after the last close the RSS is taken (the target: back down within 10 s). */
export const SETTLE_AFTER_CLOSE_MS = 10_000;
const KiB = 1024;
const MiB = 1024 * 1024;

/**
 * @typedef {object} ConnectionScale
 * @property {number} connections
 * @property {number} rssBeforeMiB
 * @property {number} rssOpenMiB
 * @property {number} kibPerConnection
 * @property {number} fdsPerConnection
 * @property {number} rssAfterCloseMiB     VmRSS SETTLE_AFTER_CLOSE_MS after the last connection closed
 * @property {number} rssAboveBeforeMiB    rssAfterCloseMiB - rssBeforeMiB
 * @property {number} openSeconds          time to open and negotiate all of them
 * @property {string} startupLimits        the server's start-up line about its limits, if it printed one
 */

/** @param {number} pid */
function rssBytes(pid) {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * KiB;
}

/** @param {number} pid */
function fdCount(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

const GREETING_LEN = 18;
const OPT_REPLY_HEADER = 20;
const NBD_REP_ACK = 1;

/** NBD_FLAG_C_FIXED_NEWSTYLE|NO_ZEROES, then NBD_OPT_GO for `name` with no info requests. */
function goBytes(/** @type {string} */ name) {
  const n = Buffer.from(name);
  const b = Buffer.alloc(4 + 16 + 4 + n.length + 2);
  b.writeUInt32BE(3, 0);
  b.write('IHAVEOPT', 4, 'latin1');
  b.writeUInt32BE(7, 12); // NBD_OPT_GO
  b.writeUInt32BE(4 + n.length + 2, 16);
  b.writeUInt32BE(n.length, 20);
  n.copy(b, 24);
  return b;
}

/**
 * One client: connects, negotiates, and resolves with the socket once the GO is acknowledged.
 * @param {string} socketPath
 * @param {Buffer} go
 * @param {number} timeoutMs
 * @returns {Promise<net.Socket>}
 */
function idleClient(socketPath, go, timeoutMs) {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    /** @type {Buffer} */
    let have = Buffer.alloc(0);
    let greeted = false;
    const timer = setTimeout(() => fail(new Error('handshake timed out')), timeoutMs);
    const fail = (/** @type {Error} */ e) => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    };
    s.on('error', fail);
    s.on('close', () => fail(new Error('the server closed the connection during the handshake')));
    s.on('data', (/** @type {Buffer} */ d) => {
      have = have.length === 0 ? d : Buffer.concat([have, d]);
      if (!greeted) {
        if (have.length < GREETING_LEN) return;
        greeted = true;
        have = have.subarray(GREETING_LEN);
        s.write(go);
      }
      while (have.length >= OPT_REPLY_HEADER) {
        const type = have.readUInt32BE(12);
        const len = have.readUInt32BE(16);
        if (have.length < OPT_REPLY_HEADER + len) return;
        have = have.subarray(OPT_REPLY_HEADER + len);
        if (type >= 0x80000000) {
          fail(new Error(`NBD_OPT_GO refused: 0x${type.toString(16)}`));
          return;
        }
        if (type === NBD_REP_ACK) {
          clearTimeout(timer);
          s.removeAllListeners('data');
          s.removeAllListeners('close');
          s.on('error', () => undefined); // closed by us later; a reset then is expected
          resolve(s);
          return;
        }
      }
    });
  });
}

/**
 * The server's start-up record of its limits (pino JSON on stderr), as its message.
 * @param {string} stderr
 */
function startupLimitsLine(stderr) {
  for (const line of stderr.split('\n')) {
    if (!line.includes('"limits"')) continue;
    try {
      const msg = /** @type {{ msg?: unknown }} */ (JSON.parse(line)).msg;
      if (typeof msg === 'string') return msg;
    } catch {
      /* not a JSON record */
    }
  }
  return '';
}

/**
 * Opens `count` idle connections to a fresh server and measures what they cost and what comes back.
 * @param {{ count: number, tmpDir: string, bin?: string, say: (line: string) => void }} o
 *   bin: the aionbd.js to run (default this checkout's; another checkout's for a before/after)
 * @returns {Promise<ConnectionScale>}
 */
export async function scaleConnections(o) {
  const bin = o.bin ?? path.join(REPO_ROOT, 'bin', 'aionbd.js');
  const dir = fs.mkdtempSync(path.join(o.tmpDir, 'aionbd-scale-'));
  const sock = path.join(dir, 'nbd.sock');
  const srv = startChild(
    process.execPath,
    [
      bin,
      'serve',
      '--listen',
      `unix:${sock}`,
      '--aio',
      `${path.join(dir, 'disk.img')},size=64M,name=disk`,
      '--rpc',
      path.join(dir, 'rpc.sock'),
      '--max-connections',
      String(o.count + 16),
    ],
    { cwd: dir },
  );
  /** @type {net.Socket[]} */
  const clients = [];
  try {
    for (let t = 0; !/exporting "disk"/.test(srv.stdout()); t++) {
      if (!srv.running() || t > 300) throw new Error(`the server did not start: ${srv.stderr().slice(-2000)}`);
      await delay(50);
    }
    const go = goBytes('disk');
    // One connection first, so what the first one initialises once (code, pools) is not charged to all.
    clients.push(await idleClient(sock, go, 10_000));
    await delay(1000);
    const rss0 = rssBytes(srv.pid);
    const fds0 = fdCount(srv.pid);
    const t0 = performance.now();
    while (clients.length < o.count + 1) {
      const n = Math.min(OPEN_BATCH, o.count + 1 - clients.length);
      clients.push(...(await Promise.all(Array.from({ length: n }, () => idleClient(sock, go, 30_000)))));
    }
    const openSeconds = (performance.now() - t0) / 1000;
    await delay(1000);
    const rss1 = rssBytes(srv.pid);
    const fds1 = fdCount(srv.pid);
    o.say(
      `scale: ${o.count} idle connections open: server RSS ${(rss0 / MiB).toFixed(1)} -> ${(rss1 / MiB).toFixed(1)} MiB, fds ${fds0} -> ${fds1}`,
    );
    for (const c of clients.splice(1)) c.destroy();
    // Closed on the server's side once its fds are back.
    for (let t = 0; fdCount(srv.pid) > fds0 && t < 200; t++) await delay(50);
    await delay(SETTLE_AFTER_CLOSE_MS);
    const rss2 = rssBytes(srv.pid);
    const startupLimits = startupLimitsLine(srv.stderr());
    return {
      connections: o.count,
      rssBeforeMiB: rss0 / MiB,
      rssOpenMiB: rss1 / MiB,
      kibPerConnection: (rss1 - rss0) / KiB / o.count,
      fdsPerConnection: (fds1 - fds0) / o.count,
      rssAfterCloseMiB: rss2 / MiB,
      rssAboveBeforeMiB: (rss2 - rss0) / MiB,
      openSeconds,
      startupLimits,
    };
  } finally {
    for (const c of clients) c.destroy();
    await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The section as lines of text.
 * @param {ConnectionScale} r
 * @returns {string[]}
 */
export function formatConnectionScale(r) {
  return [
    `scale: connections (${r.connections} idle, each past NBD_OPT_GO, over a unix socket; opened in ${r.openSeconds.toFixed(1)} s)`,
    `  RSS per idle connection: ${r.kibPerConnection.toFixed(1)} KiB (${r.rssBeforeMiB.toFixed(1)} -> ${r.rssOpenMiB.toFixed(1)} MiB)`,
    `  fds per connection: ${r.fdsPerConnection.toFixed(2)}`,
    `  RSS ${SETTLE_AFTER_CLOSE_MS / 1000} s after they closed: ${r.rssAfterCloseMiB.toFixed(1)} MiB (${r.rssAboveBeforeMiB >= 0 ? '+' : ''}${r.rssAboveBeforeMiB.toFixed(1)} MiB against before they opened)`,
    ...(r.startupLimits !== '' ? [`  start-up: ${r.startupLimits}`] : []),
  ];
}
