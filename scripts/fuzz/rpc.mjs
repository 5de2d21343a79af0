// The JSON-RPC part: a server with its RPC socket and one exported AIO bdev (d0), and
// connections that send garbage, garbled JSON, huge strings, deep nesting, batches, pipelines,
// every method with params of wrong types, then half-close, close abruptly, or stop reading.
//
// Every line the server sends must be a JSON-RPC 2.0 response; a half-closed connection must be
// answered and closed; the RPC and NBD sides must stay healthy; after the bdevs the fuzz made are
// deleted, fds and AIO contexts are back where they were. An "Internal error" answer (a method
// that threw something it did not mean to) is a finding.
//
// Kept out of harm's way: methods that attach the kernel (nbd_start_disk, nbd_stop_disk) and
// load_config (a config may hold those); paths named in params all lie in the temporary
// directory; nothing that deletes, removes, resizes or rescans is ever given d0; RAM disks are
// kept small.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { aioCtx, checkAlive, checkNoLeak, fds, FuzzFailure, ROOT, sleep, startServer, withTimeout } from './common.mjs';
import { health as nbdHealth, HEALTH_MS, SIZE } from './nbd.mjs';

const CONN_MS = 5000;
const HEALTH_EVERY = 100;
const CLEANUP_EVERY = 200;
const MAX_RSS_MIB = 600;
const MAX_MALLOC_BYTES = 8 << 20;
const EXCLUDED = new Set(['nbd_start_disk', 'nbd_stop_disk', 'load_config']);
const DESTRUCTIVE = /_delete|_remove|_resize|_rescan/;
const INTERNAL_ERROR = -32603;

/** Param names the methods know: from the built schemas, when they can be read. */
function knownKeys() {
  const keys = new Set(['name', 'filename', 'block_size', 'num_blocks', 'bdev_name', 'base_bdev', 'base_bdevs', 'uuid', 'readonly']);
  const dir = path.join(ROOT, 'dist', 'rpc', 'methods');
  try {
    for (const f of fs.readdirSync(dir)) {
      if (!f.endsWith('.js')) continue;
      for (const m of fs.readFileSync(path.join(dir, f), 'utf8').matchAll(/(\w+):\s*\{[^{}]*\btype:/g)) keys.add(m[1]);
    }
  } catch {
    /* the built-in list will do */
  }
  return [...keys];
}

/** Splits the server's output into responses; throws on a line that is not one. */
function parseLines(text) {
  const lines = text.split('\n');
  const rest = lines.pop();
  const out = [];
  for (const l of lines) {
    let v;
    try {
      v = JSON.parse(l);
    } catch {
      throw new FuzzFailure(`rpc: the server sent a line that is not JSON: ${l.slice(0, 200)}`);
    }
    const all = Array.isArray(v) ? v : [v];
    for (const x of all) {
      if (x === null || typeof x !== 'object' || x.jsonrpc !== '2.0' || (!('result' in x) && !('error' in x))) {
        throw new FuzzFailure(`rpc: the server sent something that is not a JSON-RPC response: ${l.slice(0, 200)}`);
      }
      out.push(x);
    }
  }
  return { out, rest };
}

function makeGen(r, ctx) {
  const names = [
    'd0',
    'm0',
    'm1',
    'a0',
    'a1',
    'EE_m0',
    'EE_a0',
    'r0',
    'dl0',
    'lvs0',
    'lvs0/l0',
    'm0p0',
    'x',
    '',
    'Malloc0',
    'é',
    'a'.repeat(200),
    '-x',
    'nul\u0000l',
  ];
  const paths = [
    path.join(ctx.allowed, 'a.img'),
    path.join(ctx.allowed, 'b.img'),
    path.join(ctx.allowed, 'missing.img'),
    ctx.allowed,
    path.join(ctx.allowed, 'out.img'),
    path.join(ctx.allowed, '..', 'outside.img'),
    'allowed/a.img',
    'a.img',
    '',
    path.join(ctx.allowed, 'a.img\u0000x'),
    `${ctx.allowed}/./sub/../a.img`,
  ];
  const numbers = [0, -1, 1, 2, 3, 7, 512, 4096, 4097, 65536, 1.5, -0.5, 2 ** 31, 2 ** 32, 2 ** 53, 1e308, -1e308];
  const scalar = () =>
    r.pick([
      () => r.pick(names),
      () => r.pick(paths),
      () => r.pick(numbers),
      () => r.chance(0.5),
      () => null,
      () => String(r.pick(numbers)),
      () => r.bytes(r.rnd() % 24).toString('latin1'),
    ])();
  const value = (depth = 0) => {
    if (depth > 3 || r.chance(0.7)) return scalar();
    if (r.chance(0.5)) return Array.from({ length: r.rnd() % 4 }, () => value(depth + 1));
    return Object.fromEntries(Array.from({ length: r.rnd() % 4 }, () => [r.pick(ctx.keys), value(depth + 1)]));
  };
  const deep = (n) => (r.chance(0.5) ? `${'['.repeat(n)}${']'.repeat(n)}` : `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`);

  /** Params for `method`: its keys with values of any type, some right, most wrong. */
  const params = (method) => {
    if (r.chance(0.05)) return r.pick([[], [1, 2], 'x', 7, true, { __proto__: null }]);
    const keys = [...(ctx.required.get(method) ?? [])];
    const n = r.rnd() % 4;
    for (let i = 0; i < n; i++) keys.push(r.chance(0.9) ? r.pick(ctx.keys) : `k${r.rnd() % 10}`);
    const p = {};
    for (const k of keys) p[k] = value();
    // What must not happen whatever the params: d0 deleted, a RAM disk of gigabytes.
    if (DESTRUCTIVE.test(method)) for (const k of Object.keys(p)) if (JSON.stringify(p[k]).includes('"d0')) p[k] = 'x';
    if (
      method === 'bdev_malloc_create' &&
      typeof p.num_blocks === 'number' &&
      typeof p.block_size === 'number' &&
      p.num_blocks * Math.max(p.block_size, 1) > MAX_MALLOC_BYTES
    ) {
      p.num_blocks = Math.max(1, Math.floor(MAX_MALLOC_BYTES / Math.max(p.block_size, 1)));
      if (p.num_blocks * p.block_size > MAX_MALLOC_BYTES) p.block_size = 4096;
    }
    return p;
  };
  let nextId = 1;
  /** A request object (sometimes a notification, sometimes a bad envelope). */
  const request = () => {
    const method = r.chance(0.9) ? r.pick(ctx.methods) : r.pick(['', 'nope', 'rpc_get_methods ', '__proto__', 'constructor', 7]);
    const req = { jsonrpc: '2.0', method };
    if (!r.chance(0.1)) req.id = r.chance(0.9) ? nextId++ : r.pick(['s', -1, 1.5, null, [], {}, true]);
    if (r.chance(0.9)) req.params = params(typeof method === 'string' ? method : '');
    if (r.chance(0.03)) req.jsonrpc = r.pick(['1.0', 2, null]);
    if (r.chance(0.02)) delete req.jsonrpc;
    return req;
  };
  return { request, value, deep, params, scalar };
}

/**
 * One fuzz connection. Resolves with { internal: [...], responses } or rejects with a
 * FuzzFailure when the server sent something that is not a response, or left a half-closed
 * connection unanswered.
 */
function fuzzConnection(r, g, sock) {
  return new Promise((resolve, reject) => {
    const c = net.connect({ path: sock, allowHalfOpen: true });
    let text = '';
    const responses = [];
    let done = false;
    let halfClosed = false;
    let reading = true;
    const wantIds = new Set();
    let scenario = 'connect';
    const finish = (err) => {
      if (done) return;
      if (err) err.message += ` [scenario ${scenario}]`;
      done = true;
      clearTimeout(t);
      c.destroy();
      if (err) {
        reject(err);
        return;
      }
      const internal = responses.filter((x) => x.error?.code === INTERNAL_ERROR).map((x) => x.error.message);
      resolve({ internal, responses: responses.length });
    };
    const t = setTimeout(() => {
      if (halfClosed && reading)
        finish(
          new FuzzFailure(
            `rpc: a half-closed connection got no end within ${CONN_MS} ms (${responses.length} responses): the server hangs`,
          ),
        );
      else finish();
    }, CONN_MS);
    c.on('error', () => finish());
    c.on('data', (d) => {
      if (!reading) return;
      text += d.toString('utf8');
      try {
        const { out, rest } = parseLines(text);
        text = rest;
        for (const x of out) {
          responses.push(x);
          wantIds.delete(x.id);
        }
      } catch (e) {
        finish(e);
      }
    });
    c.on('end', () => {
      if (halfClosed && wantIds.size > 0) {
        finish(
          new FuzzFailure(
            `rpc: the server closed a half-closed connection without answering request(s) ${[...wantIds].slice(0, 5).join(', ')} (answers: ${JSON.stringify(responses).slice(0, 300)} ${text.slice(0, 200)})`,
          ),
        );
      }
      finish();
    });
    c.on('close', () => finish());
    c.on('connect', async () => {
      scenario = r.pick([
        'garbage',
        'garbled',
        'huge',
        'deep',
        'pipeline',
        'batch',
        'params',
        'params',
        'params',
        'params',
        'fragments',
        'abrupt',
        'noread',
      ]);
      const send = (s) => {
        if (!done) c.write(s);
      };
      // A well-formed request whose answer must come back before the end.
      const sendTracked = (req) => {
        if (typeof req.id === 'number' && req.jsonrpc === '2.0') wantIds.add(req.id);
        send(JSON.stringify(req));
      };
      switch (scenario) {
        case 'garbage':
          send(r.bytes(1 + (r.rnd() % 256)));
          break;
        case 'garbled': {
          const s = Buffer.from(JSON.stringify(g.request()));
          for (let i = 0; i < 1 + (r.rnd() % 3); i++)
            s[r.rnd() % s.length] = r.pick([0x7b, 0x7d, 0x5b, 0x5d, 0x22, 0x5c, 0x2c, 0x3a, 0x00, 0xff, r.rnd() & 0xff]);
          send(r.chance(0.3) ? s.subarray(0, r.rnd() % s.length) : s);
          break;
        }
        case 'huge': {
          // Up to 2 MiB (one over the 16M-character limit is sent once, timed, by overLimit()).
          const n = 1 + (r.rnd() % (2 << 20));
          sendTracked({
            jsonrpc: '2.0',
            id: 1,
            method: r.pick(['bdev_get_bdevs', 'nbd_export_add', 'bdev_malloc_create']),
            params: { name: 'x'.repeat(n) },
          });
          break;
        }
        case 'deep': {
          const n = r.pick([100, 1000, 10000, 100000, 1000000]);
          if (r.chance(0.5)) send(g.deep(n));
          else {
            // Written by hand: JSON.stringify itself overflows its stack on such nesting.
            send(
              `{"jsonrpc":"2.0","id":2,"method":"${r.pick(['bdev_get_bdevs', 'bdev_raid_create', 'save_config', 'nbd_export_add'])}","params":{"name":${g.deep(n)}}}`,
            );
            wantIds.add(2);
          }
          break;
        }
        case 'pipeline': {
          const n = 1 + (r.rnd() % 500);
          const reqs = [];
          for (let i = 0; i < n; i++) {
            const q = {
              jsonrpc: '2.0',
              id: 100000 + i,
              method: r.pick(['rpc_get_methods', 'bdev_get_bdevs', 'nbd_get_exports', 'aionbd_get_version']),
            };
            reqs.push(q);
            wantIds.add(q.id);
          }
          send(reqs.map((q) => JSON.stringify(q)).join(r.pick(['', '\n', ' '])));
          break;
        }
        case 'batch': {
          const items = Array.from({ length: r.rnd() % 20 }, () => (r.chance(0.8) ? g.request() : g.value()));
          send(JSON.stringify(items));
          break;
        }
        case 'params':
          for (let i = 0; i < 1 + (r.rnd() % 4); i++) sendTracked(g.request());
          break;
        case 'fragments': {
          const s = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'bdev_get_bdevs', params: { name: 'é☃d0' } }));
          wantIds.add(3);
          for (let i = 0, k = 1; i < s.length && !done; i += k, k = 1 + (r.rnd() % 5)) {
            send(s.subarray(i, i + k));
            await sleep(0);
          }
          break;
        }
        case 'abrupt': {
          const s = JSON.stringify([g.request(), g.request()]);
          send(s.slice(0, r.rnd() % s.length));
          setTimeout(() => finish(), r.rnd() % 20);
          return;
        }
        case 'noread': {
          // A client that sends a lot and never reads: the server must not stall on it.
          reading = false;
          c.pause();
          const one = JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'rpc_get_methods' });
          send(one.repeat(1 + (r.rnd() % 2000)));
          setTimeout(() => finish(), 50 + (r.rnd() % 200));
          return;
        }
        default:
          break;
      }
      const end = r.rnd() % 3;
      if (end === 0) {
        halfClosed = true;
        c.end();
      } // answer, then close: we wait for the end
      else if (end === 1)
        setTimeout(() => finish(), r.rnd() % 50); // abrupt close
      else
        setTimeout(() => {
          halfClosed = true;
          c.end();
        }, r.rnd() % 30); // half-close a little later
    });
  });
}

/** One request on a fresh connection; resolves with its response. */
function call(sock, method, params) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const c = net.connect(sock);
      let text = '';
      c.on('error', reject);
      c.on('connect', () => c.write(JSON.stringify({ jsonrpc: '2.0', id: 1, method, ...(params !== undefined ? { params } : {}) })));
      c.on('data', (d) => {
        text += d;
        const i = text.indexOf('\n');
        if (i >= 0) {
          c.destroy();
          resolve(JSON.parse(text.slice(0, i)));
        }
      });
    }),
    HEALTH_MS,
    `rpc: ${method}`,
  );
}

/**
 * A request just over the 16M-character limit, then a half-close: it must be refused with a
 * parse error and the connection ended. Resolves with how long that took, in ms.
 */
function overLimit(sock) {
  const t0 = Date.now();
  return withTimeout(
    new Promise((resolve, reject) => {
      const c = net.connect({ path: sock, allowHalfOpen: true });
      let text = '';
      c.on('error', reject);
      c.on('data', (d) => {
        text += d;
      });
      c.on('end', () => {
        c.destroy();
        if (/"code":-32700/.test(text)) resolve(Date.now() - t0);
        else reject(new FuzzFailure(`rpc: a request over the size limit was answered with ${text.slice(0, 200)}`));
      });
      c.on('connect', () => {
        c.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'bdev_get_bdevs', params: { name: 'x'.repeat(17 << 20) } }));
      });
    }),
    60000,
    'rpc: a request over the size limit',
  );
}

async function health(rpcSock, nbdSock) {
  const m = await call(rpcSock, 'rpc_get_methods');
  if (!Array.isArray(m.result)) throw new FuzzFailure(`rpc health check: rpc_get_methods answered ${JSON.stringify(m).slice(0, 200)}`);
  await nbdHealth(nbdSock);
}

/** Deletes every export but d0's and every bdev but d0, whatever made them, as far as it goes. */
async function cleanup(rpcSock) {
  const deleters = [
    'bdev_lvol_delete',
    'bdev_raid_delete',
    'bdev_split_delete',
    'bdev_delay_delete',
    'bdev_error_delete',
    'bdev_malloc_delete',
    'bdev_aio_delete',
  ];
  for (let round = 0; round < 8; round++) {
    const ex = (await call(rpcSock, 'nbd_get_exports')).result ?? [];
    for (const e of ex) if (e.name !== 'd0') await call(rpcSock, 'nbd_export_remove', { name: e.name });
    const lvs = (await call(rpcSock, 'bdev_lvol_get_lvstores')).result ?? [];
    const bdevs = ((await call(rpcSock, 'bdev_get_bdevs')).result ?? []).filter((b) => b.name !== 'd0');
    if (bdevs.length === 0 && lvs.length === 0) return;
    for (const b of [...bdevs].reverse()) {
      for (const m of deleters) {
        const res = await call(rpcSock, m, m === 'bdev_split_delete' ? { base_bdev: b.name } : { name: b.name });
        if (res.result === true) break;
      }
    }
    for (const l of lvs) await call(rpcSock, 'bdev_lvol_delete_lvstore', { uuid: l.uuid });
  }
  const left = ((await call(rpcSock, 'bdev_get_bdevs')).result ?? []).map((b) => b.name).filter((n) => n !== 'd0');
  if (left.length > 0) throw new FuzzFailure(`rpc: bdevs the fuzz made could not be deleted: ${left.join(', ')}`);
}

/** Fuzzes a fresh server's JSON-RPC socket with `conns` connections; returns { summary, findings }. */
export async function fuzzRpc(r, dir, { conns: CONNS, quiet }) {
  const base = path.join(dir, 'rpc');
  const allowed = path.join(base, 'allowed');
  fs.mkdirSync(allowed, { recursive: true });
  for (const f of ['a.img', 'b.img']) {
    fs.writeFileSync(path.join(allowed, f), Buffer.alloc(0));
    fs.truncateSync(path.join(allowed, f), 4 << 20);
  }
  fs.writeFileSync(path.join(base, 'outside.img'), Buffer.alloc(4096));
  fs.symlinkSync(path.join(base, 'outside.img'), path.join(allowed, 'out.img'));
  const rpcSock = path.join(base, 'rpc.sock');
  const nbdSock = path.join(base, 'nbd.sock');
  const srv = await startServer(
    [
      '--rpc',
      rpcSock,
      '--listen',
      `unix:${nbdSock}`,
      '--allow-path',
      allowed,
      '--aio',
      `${path.join(base, 'd0.img')},name=d0,size=${SIZE}`,
    ],
    { cwd: base, tag: 'rpc' },
  );
  try {
    await health(rpcSock, nbdSock);
    const fdBase = fds(srv.pid);
    const aioBase = aioCtx(srv.pid);
    const methods = (await call(rpcSock, 'rpc_get_methods')).result.filter((m) => !EXCLUDED.has(m));
    // The required params of each method, from its answer to empty params.
    const required = new Map();
    for (const m of methods) {
      const e = await call(rpcSock, m, {});
      const msg = e.error?.message ?? '';
      required.set(
        m,
        [...msg.matchAll(/required property '(\w+)'/g)].map((x) => x[1]),
      );
    }
    await cleanup(rpcSock);
    const overLimitMs = await overLimit(rpcSock);
    const g = makeGen(r, { allowed, keys: knownKeys(), required, methods });
    const started = Date.now();
    let done = 0;
    let responses = 0;
    let maxRss = checkAlive(srv, 'rpc', MAX_RSS_MIB);
    const internal = new Map();
    let failure = null;
    let busy = null; // a health check or cleanup runs alone
    let started_ = 0;
    const worker = async () => {
      while (started_ < CONNS && failure === null) {
        started_++;
        if (busy !== null) await busy;
        try {
          const res = await fuzzConnection(r, g, rpcSock);
          responses += res.responses;
          for (const m of res.internal) internal.set(m, (internal.get(m) ?? 0) + 1);
          done++;
          maxRss = Math.max(maxRss, checkAlive(srv, 'rpc', MAX_RSS_MIB));
          if (done % HEALTH_EVERY === 0 && busy === null) {
            busy = (async () => {
              await health(rpcSock, nbdSock);
              if (done % CLEANUP_EVERY === 0) await cleanup(rpcSock);
              if (!quiet)
                process.stderr.write(
                  `fuzz rpc: ${done} connections, ${responses} responses, ${((Date.now() - started) / 1000).toFixed(0)} s, rss ${maxRss.toFixed(0)} MiB\n`,
                );
            })().finally(() => {
              busy = null;
            });
            await busy;
          }
        } catch (e) {
          failure ??= e;
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    if (failure !== null) throw failure;
    await health(rpcSock, nbdSock);
    await cleanup(rpcSock);
    // The shared AIO engine keeps the contexts it grew for bdevs the fuzz made at the same time until
    // its last AIO bdev closes (it never shrinks before), so contexts are judged once d0 is gone too:
    // none may be left.
    await call(rpcSock, 'nbd_export_remove', { name: 'd0' });
    const gone = await call(rpcSock, 'bdev_aio_delete', { name: 'd0' });
    if (gone.result !== true) throw new FuzzFailure(`rpc: bdev_aio_delete d0 answered ${JSON.stringify(gone)}`);
    await checkNoLeak(srv, 'rpc', fdBase, 0);
    await srv.stop();
    const findings = [...internal].map(
      ([m, n]) => `rpc: ${n} answer(s) "${m.slice(0, 200)}" (JSON-RPC internal error: a method threw what it did not mean to)`,
    );
    const secs = (Date.now() - started) / 1000;
    return {
      summary: `fuzz rpc: ${done} connections, ${responses} responses in ${secs.toFixed(1)} s over ${methods.length} methods (a 17 MiB request refused in ${overLimitMs} ms), peak server RSS ${maxRss.toFixed(0)} MiB, ${fdBase} fds before and no more after, ${aioBase} AIO context(s) while serving and none once the last AIO bdev was deleted, no crash, hang or leak`,
      findings,
    };
  } finally {
    srv.kill();
  }
}
