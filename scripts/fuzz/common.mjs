// What the three fuzz parts share: a seeded random source, NBD frame builders, the server as a
// child process, and the probes that tell a crash, a hang or a leak.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A check that failed: the run stops and says why. */
export class FuzzFailure extends Error {}

// xorshift32: the same seed replays the same input. Each part has its own, so that one part
// run alone with a seed replays what it did in a run of all three.
export function makeRng(seed) {
  let state = seed >>> 0 || 1;
  const rnd = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
  const pick = (a) => a[rnd() % a.length];
  const chance = (p) => rnd() / 2 ** 32 < p;
  const bytes = (n) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = rnd() & 0xff;
    return b;
  };
  /** Flip, cut, grow or overwrite a valid frame. */
  const mutate = (b) => {
    const c = Buffer.from(b);
    switch (rnd() % 6) {
      case 0:
        if (c.length) c[rnd() % c.length] ^= 1 << (rnd() % 8);
        return c;
      case 1:
        return c.subarray(0, rnd() % (c.length + 1));
      case 2:
        return Buffer.concat([c, bytes(rnd() % 64)]);
      case 3:
        if (c.length >= 4) c.writeUInt32BE(pick([0, 1, 0xffffffff, 0x7fffffff, 4096, rnd()]), rnd() % (c.length - 3));
        return c;
      case 4:
        return bytes(rnd() % 64);
      default:
        return c;
    }
  };
  return { rnd, pick, chance, bytes, mutate };
}

export const u64 = (v) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, BigInt(v)));
  return b;
};
export const u32 = (v) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
export const u16 = (v) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v & 0xffff);
  return b;
};

export function option(num, data) {
  return Buffer.concat([Buffer.from('IHAVEOPT'), u32(num), u32(data.length), data]);
}
export function goData(name, infos) {
  const n = Buffer.from(name);
  return Buffer.concat([u32(n.length), n, u16(infos.length), ...infos.map(u16)]);
}
export function metaData(name, qs) {
  const n = Buffer.from(name);
  return Buffer.concat([u32(n.length), n, u32(qs.length), ...qs.flatMap((q) => [u32(Buffer.byteLength(q)), Buffer.from(q)])]);
}

export const NBD_OPT = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  LIST_META: 9,
  SET_META: 10,
  EXTENDED_HEADERS: 11,
};
export const OPT_REPLY_MAGIC = Buffer.from('0003e889045565a9', 'hex');
export const REP_ACK = 1;
/** Simple, structured and extended reply magics: any of them means transmission was reached. */
export const REPLY_MAGICS = [0x67446698, 0x668e33ef, 0x6e8a278c].map((m) => u32(m));

/** A random option phase: client flags, then valid, mutated and random options. */
export function handshakeFrames(r, exportName = 'd0') {
  const frames = [r.chance(0.9) ? u32(r.pick([3, 1, 2])) : r.mutate(u32(r.rnd()))];
  const n = 1 + (r.rnd() % 8);
  for (let i = 0; i < n; i++) {
    const valid = r.pick([
      option(7, goData(r.pick([exportName, '', 'nope']), [3, 1, 2])),
      option(6, goData(exportName, [3])),
      option(3, Buffer.alloc(0)),
      option(8, Buffer.alloc(0)),
      option(11, Buffer.alloc(0)),
      option(5, Buffer.alloc(0)),
      option(4, Buffer.alloc(0)),
      option(9, metaData(exportName, r.pick([[], ['base:'], ['base:allocation'], ['x-foo:bar']]))),
      option(10, metaData(exportName, ['base:allocation'])),
      option(1, Buffer.from('nope')),
      option(2, Buffer.alloc(0)),
      option(r.rnd() % 64, r.bytes(r.rnd() % 32)),
    ]);
    frames.push(r.chance(0.5) ? r.mutate(valid) : valid);
  }
  return frames;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const tick = () => new Promise((r) => setImmediate(r));

const procStatus = (pid) => fs.readFileSync(`/proc/${pid}/status`, 'utf8');
export const rssMiB = (pid) => {
  const m = /VmRSS:\s+(\d+)/.exec(procStatus(pid));
  return m === null ? 0 : Number(m[1]) / 1024;
};
export const fds = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;
export const fdList = (pid) =>
  fs
    .readdirSync(`/proc/${pid}/fd`)
    .map((f) => {
      try {
        return `${f} -> ${fs.readlinkSync(`/proc/${pid}/fd/${f}`)}`;
      } catch {
        return `${f} (gone)`;
      }
    })
    .join('\n');
// AIO contexts of one process: each io_setup maps a ring named [aio] (aio-nr is system-wide,
// and other processes on the machine move it).
export const aioCtx = (pid) =>
  fs
    .readFileSync(`/proc/${pid}/maps`, 'utf8')
    .split('\n')
    .filter((l) => l.includes('/[aio]')).length;

/**
 * `aionbd serve ARGS` as a child process in `cwd`; resolves once it prints `exporting`.
 * The handle's died() is non-null once the process has exited.
 */
export async function startServer(args, { cwd, tag }) {
  const srv = spawn(
    process.execPath,
    [path.join(ROOT, 'bin', 'aionbd.js'), 'serve', ...args, '--log-level', process.env.FUZZ_DEBUG ? 'debug' : 'error'],
    { cwd, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  srv.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
    if (process.env.FUZZ_DEBUG) fs.appendFileSync(`/tmp/fuzz-${tag}.log`, d);
  });
  let exited = null;
  srv.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new FuzzFailure(`${tag}: the server did not start`)), 20000);
    srv.stdout.on('data', (d) => {
      out += d;
      if (out.includes('exporting')) {
        clearTimeout(t);
        resolve();
      }
    });
    srv.on('exit', () => {
      clearTimeout(t);
      reject(new FuzzFailure(`${tag}: the server exited at start`));
    });
  }).catch((e) => {
    srv.kill('SIGKILL');
    e.message += `\n${stderr}`;
    throw e;
  });
  return {
    pid: srv.pid,
    died: () => exited,
    stderr: () => stderr,
    kill: () => {
      if (exited === null) srv.kill('SIGKILL');
    },
    /** SIGTERM; a clean stop is exit 0 within 15 s. */
    async stop() {
      srv.kill('SIGTERM');
      const t0 = Date.now();
      while (exited === null && Date.now() - t0 < 15000) await sleep(50);
      if (exited === null || exited.code !== 0)
        throw new FuzzFailure(`${tag}: the server did not stop cleanly: ${JSON.stringify(exited)}\n${stderr}`);
    },
  };
}

/** Fails when the server died or outgrew maxRssMiB; returns the RSS now. */
export function checkAlive(srv, tag, maxRssMiB) {
  const d = srv.died();
  if (d !== null) throw new FuzzFailure(`${tag}: the server died: ${JSON.stringify(d)}\n${srv.stderr()}`);
  const rss = rssMiB(srv.pid);
  if (rss > maxRssMiB) throw new FuzzFailure(`${tag}: server RSS ${rss.toFixed(0)} MiB exceeds ${maxRssMiB} MiB`);
  return rss;
}

/** Once every fuzz connection is gone, the server holds no more fds than before them and exactly aioBase AIO contexts. */
export async function checkNoLeak(srv, tag, fdBase, aioBase) {
  const deadline = Date.now() + 10000;
  const t0 = Date.now();
  while (fds(srv.pid) > fdBase && Date.now() < deadline) await sleep(50);
  if (process.env.FUZZ_DEBUG) console.error(`${tag}: fds back to ${fdBase} after ${Date.now() - t0} ms`);
  if (fds(srv.pid) > fdBase) {
    if (process.env.FUZZ_DEBUG) console.error(fdList(srv.pid));
    throw new FuzzFailure(`${tag}: fd leak: ${fds(srv.pid)} open, ${fdBase} before`);
  }
  while (aioCtx(srv.pid) !== aioBase && Date.now() < deadline) await sleep(50);
  if (aioCtx(srv.pid) !== aioBase) throw new FuzzFailure(`${tag}: AIO contexts changed while serving: ${aioBase} -> ${aioCtx(srv.pid)}`);
}

/** p, or a FuzzFailure naming `what` when it takes longer than ms. */
export async function withTimeout(p, ms, what) {
  let t;
  const timeout = new Promise((_, reject) => {
    t = setTimeout(() => reject(new FuzzFailure(`${what} timed out after ${ms} ms: the server hangs`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}
