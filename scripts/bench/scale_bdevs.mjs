// `npm run bench -- --scale N`: what N AIO bdevs, each exported, cost one server. They are
// created over JSON-RPC (one connection, one request at a time, as a provisioning script does)
// on sparse files, listed with `nbdinfo --list`, then deleted; the server's RSS, open fds and
// AIO contexts (and the machine's aio-nr) are read before, at the peak and after, and printed
// as cost per bdev. Not a timed test: the numbers are for the reader (the README's scale section).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { delay, startChild } from './procs.mjs';

/**
 * One JSON-RPC connection, requests answered in order (the server answers one line each).
 * @param {string} sock
 */
export async function rpcSession(sock) {
  const s = net.connect(sock);
  await new Promise((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  /** @type {{ resolve: (v: unknown) => void, reject: (e: Error) => void }[]} */
  const waiting = [];
  let buf = '';
  let id = 0;
  s.setEncoding('utf8');
  s.on('data', (/** @type {string} */ chunk) => {
    buf += chunk;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const r = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      const w = waiting.shift();
      if (w === undefined) continue;
      if (r.error !== undefined) w.reject(new Error(`${r.error.message} (${r.error.code})`));
      else w.resolve(r.result);
    }
  });
  s.on('close', () => {
    for (const w of waiting.splice(0)) w.reject(new Error('the JSON-RPC connection closed'));
  });
  return {
    /** @param {string} method @param {unknown} params @returns {Promise<unknown>} */
    call(method, params) {
      return new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
        s.write(JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params }));
      });
    },
    close() {
      s.destroy();
    },
  };
}

/**
 * What /proc says of a process now.
 * @param {number} pid
 */
function probe(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKiB = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
  const contexts = fs
    .readFileSync(`/proc/${pid}/maps`, 'utf8')
    .split('\n')
    .filter((l) => l.includes('/[aio]')).length;
  const aioNr = Number(fs.readFileSync('/proc/sys/fs/aio-nr', 'utf8'));
  return { rssKiB, fds, contexts, aioNr };
}

/**
 * @typedef {object} ScaleResult
 * @property {string} root         the aionbd checkout measured
 * @property {number} asked        bdevs asked for
 * @property {number} created      bdevs created and exported (less than asked when one failed)
 * @property {string|null} error   why creation stopped early
 * @property {number} createSec    creating and exporting them all
 * @property {ReturnType<typeof probe>} before
 * @property {ReturnType<typeof probe>} peak     with every bdev exported
 * @property {ReturnType<typeof probe>} after    once every one was deleted
 * @property {number|null} listed  exports `nbdinfo --list` showed (null: nbdinfo missing or failed)
 * @property {number|null} listSec
 * @property {number} deleteSec
 */

/**
 * Creates `count` AIO bdevs and exports on a fresh server of the checkout at `root`, lists and
 * deletes them.
 * @param {{ root: string, count: number, tmpDir: string, say: (line: string) => void }} p
 * @returns {Promise<ScaleResult>}
 */
export async function scaleBdevs({ root, count, tmpDir, say }) {
  const dir = fs.mkdtempSync(path.join(tmpDir, 'aionbd-scale-'));
  const rpcSock = path.join(dir, 'rpc.sock'),
    nbdSock = path.join(dir, 'nbd.sock');
  let srv = null;
  try {
    fs.mkdirSync(path.join(dir, 'img'));
    for (let i = 0; i < count; i++) {
      const fd = fs.openSync(path.join(dir, 'img', `s${i}.img`), 'w');
      fs.ftruncateSync(fd, 1 << 20); // sparse: nothing is written
      fs.closeSync(fd);
    }
    fs.writeFileSync(path.join(dir, 'empty.json'), '{"subsystems": []}');
    srv = startChild(
      process.execPath,
      [
        path.join(root, 'bin', 'aionbd.js'),
        'serve',
        '--listen',
        `unix:${nbdSock}`,
        '--rpc',
        rpcSock,
        '--allow-path',
        path.join(dir, 'img'),
        '--config',
        path.join(dir, 'empty.json'),
      ],
      { cwd: dir },
    );
    for (let t = 0; !srv.stderr().includes('"msg":"listening"'); t++) {
      if (!srv.running() || t > 300) throw new Error(`aionbd serve did not start: ${srv.stderr().slice(-2000)}`);
      await delay(50);
    }
    const before = probe(srv.pid);
    const rpc = await rpcSession(rpcSock);
    let created = 0;
    /** @type {string|null} */
    let error = null;
    const t0 = performance.now();
    try {
      for (; created < count; created++) {
        await rpc.call('bdev_aio_create', { filename: path.join(dir, 'img', `s${created}.img`), name: `s${created}` });
        await rpc.call('nbd_export_add', { bdev_name: `s${created}` });
        if ((created + 1) % 1000 === 0) say(`scale: ${created + 1} bdevs exported`);
      }
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      // The bdev may exist without its export: delete it with the others.
      try {
        await rpc.call('bdev_aio_delete', { name: `s${created}` });
      } catch {
        /* it was not created */
      }
    }
    const createSec = (performance.now() - t0) / 1000;
    const peak = probe(srv.pid);

    let listed = null,
      listSec = null;
    const t1 = performance.now();
    const r = spawnSync('nbdinfo', ['--list', '--json', `nbd+unix:///?socket=${nbdSock}`], {
      encoding: 'utf8',
      maxBuffer: 256 << 20,
      timeout: 300_000,
    });
    if (r.status === 0) {
      listed = JSON.parse(r.stdout).exports?.length ?? 0;
      listSec = (performance.now() - t1) / 1000;
    } else {
      say(`scale: nbdinfo --list failed: ${r.error?.message ?? r.stderr.trim().split('\n').slice(-3).join(' / ')}`);
    }

    const t2 = performance.now();
    for (let i = 0; i < created; i++) {
      await rpc.call('nbd_export_remove', { name: `s${i}` });
      await rpc.call('bdev_aio_delete', { name: `s${i}` });
    }
    const deleteSec = (performance.now() - t2) / 1000;
    rpc.close();
    // The RPC connection's fd goes when the server sees it close: a few loop turns (bounded).
    let after = probe(srv.pid);
    for (let t = 0; t < 50 && after.fds > before.fds; t++) {
      await delay(100);
      after = probe(srv.pid);
    }
    return { root, asked: count, created, error, createSec, before, peak, after, listed, listSec, deleteSec };
  } finally {
    if (srv !== null) await srv.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The cost per bdev, as lines for the terminal.
 * @param {ScaleResult} r
 * @returns {string[]}
 */
export function scaleLines(r) {
  const n = Math.max(r.created, 1);
  const per = (/** @type {number} */ x, /** @type {number} */ digits) => (x / n).toFixed(digits);
  const d = (/** @type {'rssKiB'|'fds'|'contexts'|'aioNr'} */ k, /** @type {ReturnType<typeof probe>} */ a) => a[k] - r.before[k];
  return [
    `scale: ${r.root}: ${r.created} of ${r.asked} AIO bdevs created and exported${r.error !== null ? ` (stopped: ${r.error})` : ''}`,
    `  create + export: ${r.createSec.toFixed(1)} s, ${per(r.createSec * 1000, 2)} ms per bdev`,
    `  RSS: ${r.before.rssKiB} -> ${r.peak.rssKiB} KiB (${(r.peak.rssKiB / 1024).toFixed(0)} MiB), ${per(d('rssKiB', r.peak), 1)} KiB per bdev`,
    `  aio-nr: +${d('aioNr', r.peak)} (${per(d('aioNr', r.peak), 3)} per bdev; machine-wide), AIO contexts of the server: +${d('contexts', r.peak)}`,
    `  fds: +${d('fds', r.peak)} (${per(d('fds', r.peak), 3)} per bdev)`,
    `  nbdinfo --list: ${r.listed === null ? 'not run or failed' : `${r.listed} exports in ${r.listSec?.toFixed(1)} s`}`,
    `  delete all: ${r.deleteSec.toFixed(1)} s (${per(r.deleteSec * 1000, 2)} ms per bdev); afterwards vs before: ` +
      `aio-nr ${d('aioNr', r.after) >= 0 ? '+' : ''}${d('aioNr', r.after)}, contexts ${d('contexts', r.after)}, fds ${d('fds', r.after)}, ` +
      `RSS ${d('rssKiB', r.after) >= 0 ? '+' : ''}${(d('rssKiB', r.after) / 1024).toFixed(0)} MiB`,
  ];
}
