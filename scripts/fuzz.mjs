#!/usr/bin/env node
// Throws random and mutated NBD frames at a real aionbd server (a child process on a unix
// socket) and checks that it survives: no crash, no hang (a health check must pass regularly),
// no leaked file descriptors or AIO contexts, bounded memory.
//
//   node scripts/fuzz.mjs [--frames N] [--seed S] [--quiet]
//
// Exit 0 when every check passed; 1 with the reason otherwise. The last line is a summary.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const FRAMES = Number(opt('--frames', '1000000'));
const SEED = Number(opt('--seed', String(Date.now() % 2 ** 31)));
const QUIET = args.includes('--quiet');
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SIZE = 16 * 1024 * 1024;
const CONN_MS = 3000;          // one fuzz connection, at most
const HEALTH_EVERY = 200;      // connections between health checks
const HEALTH_MS = 10000;
const MAX_RSS_MIB = 600;

// xorshift32: the same seed replays the same frames.
let state = SEED || 1;
const rnd = () => { state ^= state << 13; state >>>= 0; state ^= state >>> 17; state ^= state << 5; state >>>= 0; return state; };
const pick = (a) => a[rnd() % a.length];
const chance = (p) => rnd() / 2 ** 32 < p;
const bytes = (n) => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = rnd() & 0xff; return b; };

const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt.asUintN(64, BigInt(v))); return b; };
const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; };
const u16 = (v) => { const b = Buffer.alloc(2); b.writeUInt16BE(v & 0xffff); return b; };

function option(num, data) { return Buffer.concat([Buffer.from('IHAVEOPT'), u32(num), u32(data.length), data]); }
function goData(name, infos) { const n = Buffer.from(name); return Buffer.concat([u32(n.length), n, u16(infos.length), ...infos.map(u16)]); }
function metaData(name, qs) { const n = Buffer.from(name); return Buffer.concat([u32(n.length), n, u32(qs.length), ...qs.flatMap((q) => [u32(Buffer.byteLength(q)), Buffer.from(q)])]); }

/** Flip, cut, grow or overwrite a valid frame. */
function mutate(b) {
  const c = Buffer.from(b);
  switch (rnd() % 6) {
    case 0: if (c.length) c[rnd() % c.length] ^= 1 << (rnd() % 8); return c;
    case 1: return c.subarray(0, rnd() % (c.length + 1));
    case 2: return Buffer.concat([c, bytes(rnd() % 64)]);
    case 3: if (c.length >= 4) c.writeUInt32BE(pick([0, 1, 0xffffffff, 0x7fffffff, 4096, rnd()]), (rnd() % (c.length - 3))); return c;
    case 4: return bytes(rnd() % 64);
    default: return c;
  }
}

const BOUNDARY_OFFSETS = [0, 1, 511, 512, 4096, SIZE - 512, SIZE - 1, SIZE, SIZE + 512, 2 ** 32, 2 ** 53, '18446744073709551104', '18446744073709551615'];
const LENGTHS = [0, 1, 512, 4096, 65536, 1 << 20, 32 << 20, (32 << 20) + 1, 0xffffffff];

function request(extended) {
  const type = chance(0.8) ? pick([0, 1, 3, 4, 5, 6, 7]) : rnd() % 65536;
  let flags = chance(0.7) ? pick([0, 1, 2, 4, 8, 16, 0x20]) : rnd() & 0xffff;
  const off = chance(0.5) ? (rnd() % (SIZE / 512)) * 512 : pick(BOUNDARY_OFFSETS);
  let len = chance(0.6) ? pick([512, 4096, 8192, 65536]) : pick(LENGTHS);
  // Payloads are sent only where a well-formed client would send one, and only if modest.
  let payload = Buffer.alloc(0);
  const wantsPayload = extended ? (flags & 0x20) !== 0 : type === 1;
  if (wantsPayload) {
    if (len > 256 * 1024) len = rnd() % (256 * 1024);
    payload = chance(0.9) ? bytes(Math.min(len, 4096)).subarray(0, len) : bytes(len);
    if (payload.length < len) payload = Buffer.concat([payload, Buffer.alloc(len - payload.length)]);
  }
  const magic = chance(0.995) ? (extended ? 0x21e41c71 : 0x25609513) : rnd();
  const hdr = extended
    ? Buffer.concat([u32(magic), u16(flags), u16(type), u64(rnd()), u64(off), u64(len)])
    : Buffer.concat([u32(magic), u16(flags), u16(type), u64(rnd()), u64(off), u32(len)]);
  const frame = Buffer.concat([hdr, payload]);
  return chance(0.02) ? mutate(frame) : frame;
}

function handshakeFrames() {
  const frames = [chance(0.9) ? u32(pick([3, 1, 2])) : mutate(u32(rnd()))];
  const n = 1 + (rnd() % 8);
  for (let i = 0; i < n; i++) {
    const valid = pick([
      option(7, goData(pick(['d0', '', 'nope']), [3, 1, 2])), option(6, goData('d0', [3])), option(3, Buffer.alloc(0)),
      option(8, Buffer.alloc(0)), option(11, Buffer.alloc(0)), option(5, Buffer.alloc(0)), option(4, Buffer.alloc(0)),
      option(9, metaData('d0', pick([[], ['base:'], ['base:allocation'], ['x-foo:bar']]))),
      option(10, metaData('d0', ['base:allocation'])), option(1, Buffer.from('nope')), option(2, Buffer.alloc(0)),
      option(rnd() % 64, bytes(rnd() % 32)),
    ]);
    frames.push(chance(0.5) ? mutate(valid) : valid);
  }
  return frames;
}

/** Runs one connection; resolves with how many frames it sent. Never throws. */
function fuzzConnection(sock) {
  return new Promise((resolve) => {
    const c = net.connect(sock);
    let sent = 0;
    let done = false;
    const finish = () => { if (!done) { done = true; clearTimeout(t); c.destroy(); resolve(sent); } };
    const t = setTimeout(finish, CONN_MS);
    c.on('error', finish);
    c.on('close', finish);
    c.on('data', () => { /* replies are read and dropped: the server must not block on us */ });
    c.on('connect', async () => {
      const transmission = chance(0.6);
      if (!transmission) {
        for (const f of handshakeFrames()) { if (done) break; c.write(f); sent++; await new Promise((r) => setImmediate(r)); }
        setTimeout(finish, 20);
        return;
      }
      // A proper handshake first, then garbage-laced requests.
      const extended = chance(0.3);
      const structured = extended || chance(0.5);
      c.write(u32(3));
      if (extended) c.write(option(11, Buffer.alloc(0)));
      else if (structured) c.write(option(8, Buffer.alloc(0)));
      if (structured && chance(0.5)) c.write(option(10, metaData('d0', ['base:allocation'])));
      c.write(option(7, goData('d0', [])));
      await new Promise((r) => setTimeout(r, 5));
      const n = 1 + (rnd() % 64);
      for (let i = 0; i < n && !done; i++) { c.write(request(extended)); sent++; if (i % 8 === 7) await new Promise((r) => setImmediate(r)); }
      if (chance(0.3)) c.write(Buffer.concat([u32(extended ? 0x21e41c71 : 0x25609513), u16(0), u16(2), u64(0), u64(0), extended ? u64(0) : u32(0)]));
      setTimeout(finish, chance(0.5) ? 1 : 50);
    });
  });
}

/** A well-behaved client: handshake and one READ must work within HEALTH_MS. */
function health(sock) {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock);
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => { c.destroy(); reject(new Error('health check timed out: the server hangs')); }, HEALTH_MS);
    c.on('error', (e) => { clearTimeout(t); reject(e); });
    c.on('connect', () => {
      c.write(u32(3));
      c.write(option(7, goData('d0', [])));
      c.write(Buffer.concat([u32(0x25609513), u16(0), u16(0), u64(42), u64(SIZE - 512), u32(512)]));
    });
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const i = buf.indexOf(Buffer.from([0x67, 0x44, 0x66, 0x98]));
      if (i >= 0 && buf.length >= i + 16 + 512) {
        clearTimeout(t);
        const err = buf.readUInt32BE(i + 4);
        c.destroy();
        if (err !== 0 || buf.readBigUInt64BE(i + 8) !== 42n) reject(new Error(`health READ failed: error ${err}`));
        else resolve();
      }
    });
  });
}

const procStatus = (pid) => fs.readFileSync(`/proc/${pid}/status`, 'utf8');
const rssMiB = (pid) => { const m = /VmRSS:\s+(\d+)/.exec(procStatus(pid)); return m === null ? 0 : Number(m[1]) / 1024; };
const fds = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;
const require_ls = (pid) => fs.readdirSync(`/proc/${pid}/fd`).map((f) => `${f} -> ${fs.readlinkSync(`/proc/${pid}/fd/${f}`)}`).join('\n');
// AIO contexts of one process: each io_setup maps a ring named [aio] (aio-nr is system-wide,
// and other processes on the machine move it).
const aioCtx = (pid) => fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter((l) => l.includes('/[aio]')).length;

async function main() {
  const dir = fs.mkdtempSync(path.join(fs.existsSync('/var/tmp') ? '/var/tmp' : os.tmpdir(), 'aionbd-fuzz-'));
  const sock = path.join(dir, 's.sock');
  const srv = spawn(process.execPath, [path.join(ROOT, 'bin', 'aionbd.js'), 'serve', '--no-rpc', '--listen', `unix:${sock}`,
    '--aio', `${path.join(dir, 'f.img')},name=d0,size=${SIZE}`, '--log-level', process.env.FUZZ_DEBUG ? 'debug' : 'error'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  srv.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); if (process.env.FUZZ_DEBUG) fs.appendFileSync('/tmp/fuzz-srv.log', d); });
  let exited = null;
  srv.on('exit', (code, signal) => { exited = { code, signal }; });
  const fail = (why) => {
    srv.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    console.error(`fuzz: FAILED (seed ${SEED}): ${why}\n${stderr}`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  };
  await new Promise((resolve, reject) => {
    let out = '';
    srv.stdout.on('data', (d) => { out += d; if (out.includes('exporting')) resolve(); });
    srv.on('exit', () => reject(new Error('server exited at start')));
    setTimeout(() => reject(new Error('server did not start')), 20000);
  }).catch((e) => fail(e.message));
  await health(sock).catch((e) => fail(e.message));
  const fdBase = fds(srv.pid);
  const aioServing = aioCtx(srv.pid);
  const started = Date.now();
  let frames = 0;
  let conns = 0;
  let maxRss = rssMiB(srv.pid);
  while (frames < FRAMES) {
    const batch = await Promise.all(Array.from({ length: 8 }, () => fuzzConnection(sock)));
    frames += batch.reduce((a, b) => a + b, 0);
    conns += 8;
    if (exited !== null) fail(`the server died: ${JSON.stringify(exited)}`);
    maxRss = Math.max(maxRss, rssMiB(srv.pid));
    if (maxRss > MAX_RSS_MIB) fail(`server RSS ${maxRss.toFixed(0)} MiB exceeds ${MAX_RSS_MIB} MiB`);
    if (conns % HEALTH_EVERY < 8) {
      await health(sock).catch((e) => fail(e.message));
      if (!QUIET) process.stderr.write(`fuzz: ${frames} frames, ${conns} connections, ${((Date.now() - started) / 1000).toFixed(0)} s, rss ${maxRss.toFixed(0)} MiB\n`);
    }
  }
  await health(sock).catch((e) => fail(e.message));
  // Every fuzz connection is gone: the server holds what it held before them.
  const deadline = Date.now() + 10000;
  while (fds(srv.pid) > fdBase && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (fds(srv.pid) > fdBase && process.env.FUZZ_DEBUG) { console.error(require_ls(srv.pid)); await new Promise((r) => setTimeout(r, 600000)); }
  if (fds(srv.pid) > fdBase) fail(`fd leak: ${fds(srv.pid)} open, ${fdBase} before`);
  if (aioCtx(srv.pid) !== aioServing) fail(`AIO contexts changed while serving: ${aioServing} -> ${aioCtx(srv.pid)}`);
  srv.kill('SIGTERM');
  const t0 = Date.now();
  while (exited === null && Date.now() - t0 < 15000) await new Promise((r) => setTimeout(r, 50));
  if (exited === null || exited.code !== 0) fail(`server did not stop cleanly: ${JSON.stringify(exited)}`);
  fs.rmSync(dir, { recursive: true, force: true });
  const secs = (Date.now() - started) / 1000;
  console.log(`fuzz: ${frames} frames over ${conns} connections in ${secs.toFixed(1)} s (seed ${SEED}), peak server RSS ${maxRss.toFixed(0)} MiB, ${fdBase} fds and ${aioServing} AIO context(s) before and after, no crash, hang or leak`);
  console.log('1 passed, 0 failed');
}

main().catch((e) => { console.error(e); process.exit(1); });
