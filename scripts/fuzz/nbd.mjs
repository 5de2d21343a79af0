// The NBD part: random and mutated option and transmission frames over plain unix-socket
// connections, with a health check (handshake and one READ) every HEALTH_EVERY connections.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  aioCtx,
  checkAlive,
  checkNoLeak,
  fds,
  FuzzFailure,
  goData,
  handshakeFrames,
  metaData,
  option,
  startServer,
  tick,
  u16,
  u32,
  u64,
} from './common.mjs';

export const SIZE = 16 * 1024 * 1024;
const CONN_MS = 3000; // one fuzz connection, at most
const HEALTH_EVERY = 200; // connections between health checks
export const HEALTH_MS = 10000;
const MAX_RSS_MIB = 600;

const BOUNDARY_OFFSETS = [
  0,
  1,
  511,
  512,
  4096,
  SIZE - 512,
  SIZE - 1,
  SIZE,
  SIZE + 512,
  2 ** 32,
  2 ** 53,
  '18446744073709551104',
  '18446744073709551615',
];
const LENGTHS = [0, 1, 512, 4096, 65536, 1 << 20, 32 << 20, (32 << 20) + 1, 0xffffffff];

/** One transmission request, mostly well formed, with boundary offsets, lengths and flags. */
export function request(r, extended) {
  const type = r.chance(0.8) ? r.pick([0, 1, 3, 4, 5, 6, 7]) : r.rnd() % 65536;
  const flags = r.chance(0.7) ? r.pick([0, 1, 2, 4, 8, 16, 0x20]) : r.rnd() & 0xffff;
  const off = r.chance(0.5) ? (r.rnd() % (SIZE / 512)) * 512 : r.pick(BOUNDARY_OFFSETS);
  let len = r.chance(0.6) ? r.pick([512, 4096, 8192, 65536]) : r.pick(LENGTHS);
  // Payloads are sent only where a well-formed client would send one, and only if modest.
  let payload = Buffer.alloc(0);
  const wantsPayload = extended ? (flags & 0x20) !== 0 : type === 1;
  if (wantsPayload) {
    if (len > 256 * 1024) len = r.rnd() % (256 * 1024);
    payload = r.chance(0.9) ? r.bytes(Math.min(len, 4096)).subarray(0, len) : r.bytes(len);
    if (payload.length < len) payload = Buffer.concat([payload, Buffer.alloc(len - payload.length)]);
  }
  const magic = r.chance(0.995) ? (extended ? 0x21e41c71 : 0x25609513) : r.rnd();
  const hdr = extended
    ? Buffer.concat([u32(magic), u16(flags), u16(type), u64(r.rnd()), u64(off), u64(len)])
    : Buffer.concat([u32(magic), u16(flags), u16(type), u64(r.rnd()), u64(off), u32(len)]);
  const frame = Buffer.concat([hdr, payload]);
  return r.chance(0.02) ? r.mutate(frame) : frame;
}

/** A disconnect request in the connection's header style. */
export const disc = (extended) =>
  Buffer.concat([u32(extended ? 0x21e41c71 : 0x25609513), u16(0), u16(2), u64(0), u64(0), extended ? u64(0) : u32(0)]);

/** Runs one connection; resolves with how many frames it sent. Never throws. */
function fuzzConnection(r, sock) {
  return new Promise((resolve) => {
    const c = net.connect(sock);
    let sent = 0;
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        clearTimeout(t);
        c.destroy();
        resolve(sent);
      }
    };
    const t = setTimeout(finish, CONN_MS);
    c.on('error', finish);
    c.on('close', finish);
    c.on('data', () => {
      /* replies are read and dropped: the server must not block on us */
    });
    c.on('connect', async () => {
      const transmission = r.chance(0.6);
      if (!transmission) {
        for (const f of handshakeFrames(r)) {
          if (done) break;
          c.write(f);
          sent++;
          await tick();
        }
        setTimeout(finish, 20);
        return;
      }
      // A proper handshake first, then garbage-laced requests.
      const extended = r.chance(0.3);
      const structured = extended || r.chance(0.5);
      c.write(u32(3));
      if (extended) c.write(option(11, Buffer.alloc(0)));
      else if (structured) c.write(option(8, Buffer.alloc(0)));
      if (structured && r.chance(0.5)) c.write(option(10, metaData('d0', ['base:allocation'])));
      c.write(option(7, goData('d0', [])));
      await new Promise((res) => setTimeout(res, 5));
      const n = 1 + (r.rnd() % 64);
      for (let i = 0; i < n && !done; i++) {
        c.write(request(r, extended));
        sent++;
        if (i % 8 === 7) await tick();
      }
      if (r.chance(0.3)) c.write(disc(extended));
      setTimeout(finish, r.chance(0.5) ? 1 : 50);
    });
  });
}

/**
 * A well-behaved client on an open stream (after the greeting, or after TLS): flags, GO for d0 and
 * one READ must be answered within HEALTH_MS. `before` is written first (STARTTLS has been done).
 */
export function healthOn(c, { flags = true } = {}) {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => {
      c.destroy();
      reject(new FuzzFailure('health check timed out: the server hangs'));
    }, HEALTH_MS);
    c.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    c.on('close', () => {
      clearTimeout(t);
      reject(new FuzzFailure('health check: the server closed the connection'));
    });
    if (flags) c.write(u32(3));
    c.write(option(7, goData('d0', [])));
    c.write(Buffer.concat([u32(0x25609513), u16(0), u16(0), u64(42), u64(SIZE - 512), u32(512)]));
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const i = buf.indexOf(Buffer.from([0x67, 0x44, 0x66, 0x98]));
      if (i >= 0 && buf.length >= i + 16 + 512) {
        clearTimeout(t);
        const err = buf.readUInt32BE(i + 4);
        c.removeAllListeners('close');
        c.destroy();
        if (err !== 0 || buf.readBigUInt64BE(i + 8) !== 42n) reject(new FuzzFailure(`health READ failed: error ${err}`));
        else resolve();
      }
    });
  });
}

export const health = (sock) => healthOn(net.connect(sock));

/** Fuzzes a fresh server until `frames` frames are sent; returns the summary line. */
export async function fuzzNbd(r, dir, { frames: FRAMES, quiet }) {
  const sock = path.join(dir, 'nbd.sock');
  const srv = await startServer(['--no-rpc', '--listen', `unix:${sock}`, '--aio', `${path.join(dir, 'nbd.img')},name=d0,size=${SIZE}`], {
    cwd: dir,
    tag: 'nbd',
  });
  try {
    await health(sock);
    const fdBase = fds(srv.pid);
    const aioServing = aioCtx(srv.pid);
    const started = Date.now();
    let frames = 0;
    let conns = 0;
    let maxRss = checkAlive(srv, 'nbd', MAX_RSS_MIB);
    while (frames < FRAMES) {
      const batch = await Promise.all(Array.from({ length: 8 }, () => fuzzConnection(r, sock)));
      frames += batch.reduce((a, b) => a + b, 0);
      conns += 8;
      maxRss = Math.max(maxRss, checkAlive(srv, 'nbd', MAX_RSS_MIB));
      if (conns % HEALTH_EVERY < 8) {
        await health(sock);
        if (!quiet)
          process.stderr.write(
            `fuzz nbd: ${frames} frames, ${conns} connections, ${((Date.now() - started) / 1000).toFixed(0)} s, rss ${maxRss.toFixed(0)} MiB\n`,
          );
      }
    }
    await health(sock);
    await checkNoLeak(srv, 'nbd', fdBase, aioServing);
    await srv.stop();
    fs.rmSync(path.join(dir, 'nbd.img'), { force: true });
    const secs = (Date.now() - started) / 1000;
    return `fuzz nbd: ${frames} frames over ${conns} connections in ${secs.toFixed(1)} s, peak server RSS ${maxRss.toFixed(0)} MiB, ${fdBase} fds and ${aioServing} AIO context(s) before and after, no crash, hang or leak`;
  } finally {
    srv.kill();
  }
}
