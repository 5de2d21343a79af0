// The TLS part: a server that requires TLS with X.509 client certificates (--tls-ca) and PSK,
// and connections that go wrong around STARTTLS: data with it, twice, options before and after,
// garbage or a garbled, truncated or replayed TLS stream, closes mid-handshake, and clients with
// no, an untrusted or a trusted certificate, or a right or wrong pre-shared key, that then send
// random options and requests inside TLS.
//
// Besides crash, hang and leak, it watches for authentication bypass: a connection that sees
// NBD_OPT_GO acknowledged (or any transmission reply) without a credential the server should
// accept is a finding; with --require-auth a finding fails the run.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import {
  aioCtx,
  checkAlive,
  checkNoLeak,
  fds,
  FuzzFailure,
  handshakeFrames,
  NBD_OPT,
  OPT_REPLY_MAGIC,
  option,
  goData,
  REP_ACK,
  REPLY_MAGICS,
  startServer,
  tick,
  u16,
  u32,
  u64,
} from './common.mjs';
import { disc, healthOn, HEALTH_MS, request, SIZE } from './nbd.mjs';

const CONN_MS = 3000;
const HEALTH_EVERY = 48;
const MAX_RSS_MIB = 600;
const PSK_ID = 'alice';
const PSK_KEY = Buffer.from('5a'.repeat(32), 'hex');

/**
 * Credentials a fuzz client may offer: none, a self-signed certificate the CA never signed, one
 * the CA signed, the right pre-shared key, a wrong key, an identity the PSK file does not hold.
 */
const CREDS = ['none', 'untrusted', 'trusted', 'psk', 'pskWrongKey', 'pskUnknownId'];

/**
 * The two servers: X.509 requiring client certificates (with a PSK file too), and PSK alone.
 * `entitled` are the credentials each must let in, `mayAdmit` those it may let in or not (a
 * right PSK where client certificates are required: a policy, not a breach); any other
 * credential that gets in is a bypass.
 */
const SERVERS = [
  {
    name: 'x509+ca+psk',
    flags: (c) => [
      '--tls-cert',
      c('server-cert.pem'),
      '--tls-key',
      c('server-key.pem'),
      '--tls-ca',
      c('ca-cert.pem'),
      '--tls-psk',
      c('keys.psk'),
    ],
    entitled: ['trusted'],
    mayAdmit: ['psk'],
    healthCred: 'trusted',
  },
  { name: 'psk', flags: (c) => ['--tls-psk', c('keys.psk')], entitled: ['psk'], mayAdmit: [], healthCred: 'psk' },
];

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: 'ignore' });
}

/** A CA, a server certificate signed by it, a client certificate signed by it, a self-signed client certificate, a PSK file. */
export function makeCredentials(dir) {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca-key.pem', '-out', 'ca-cert.pem', '-days', '2', '-subj', '/CN=aionbd fuzz CA'], dir);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  for (const who of ['server', 'client']) {
    openssl(
      [
        'req',
        ...ec,
        '-keyout',
        `${who}-key.pem`,
        '-out',
        `${who}.csr`,
        '-subj',
        `/CN=${who === 'server' ? 'localhost' : 'aionbd fuzz client'}`,
      ],
      dir,
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${who}.csr`,
        '-CA',
        'ca-cert.pem',
        '-CAkey',
        'ca-key.pem',
        '-CAcreateserial',
        '-out',
        `${who}-cert.pem`,
        '-days',
        '2',
        '-extfile',
        'ext.cnf',
      ],
      dir,
    );
  }
  openssl(
    ['req', '-x509', ...ec, '-keyout', 'rogue-key.pem', '-out', 'rogue-cert.pem', '-days', '2', '-subj', '/CN=aionbd fuzz client'],
    dir,
  );
  fs.writeFileSync(path.join(dir, 'keys.psk'), `${PSK_ID}:${PSK_KEY.toString('hex')}\n`);
  const read = (f) => fs.readFileSync(path.join(dir, f));
  return {
    trusted: { cert: read('client-cert.pem'), key: read('client-key.pem') },
    untrusted: { cert: read('rogue-cert.pem'), key: read('rogue-key.pem') },
  };
}

function tlsOptions(cred, creds) {
  const base = { rejectUnauthorized: false, checkServerIdentity: () => undefined, minVersion: 'TLSv1.2' };
  switch (cred) {
    case 'trusted':
      return { ...base, ...creds.trusted };
    case 'untrusted':
      return { ...base, ...creds.untrusted };
    case 'psk':
      return { ...base, ciphers: 'PSK', pskCallback: () => ({ psk: PSK_KEY, identity: PSK_ID }) };
    case 'pskWrongKey':
      return { ...base, ciphers: 'PSK', pskCallback: () => ({ psk: Buffer.alloc(32, 1), identity: PSK_ID }) };
    case 'pskUnknownId':
      return { ...base, ciphers: 'PSK', pskCallback: () => ({ psk: PSK_KEY, identity: 'mallory' }) };
    default:
      return base;
  }
}

/**
 * The client's side of the socket seen through a man in the middle: each write of the TLS
 * client goes through `tamper`, which may change it, drop the rest (null: close), or pass it.
 */
class Tamper extends Duplex {
  constructor(sock, tamper) {
    super();
    this.sock = sock;
    this.tamper = tamper;
    this.n = 0;
    sock.on('data', (d) => this.push(d));
    sock.on('end', () => this.push(null));
    sock.on('close', () => this.destroy());
    sock.on('error', (e) => this.destroy(e));
  }
  _read() {
    /* pushed as the socket delivers */
  }
  _write(chunk, _enc, cb) {
    const out = this.tamper(chunk, this.n++);
    if (out === null) {
      this.sock.destroy();
      cb();
      return;
    }
    if (!this.sock.destroyed) this.sock.write(out);
    cb();
  }
  _destroy(err, cb) {
    this.sock.destroy();
    cb(err);
  }
}

/** How the TLS client's bytes are damaged on their way, if at all. */
function tamperer(r) {
  const kind = r.chance(0.6) ? 'none' : r.pick(['flip', 'cut', 'garbage', 'replay', 'close', 'header']);
  const at = r.rnd() % 4;
  const copy = Buffer.from;
  return (chunk, n) => {
    if (kind === 'none' || n !== at) return chunk;
    switch (kind) {
      case 'flip': {
        const c = copy(chunk);
        c[r.rnd() % c.length] ^= 1 << (r.rnd() % 8);
        return c;
      }
      case 'cut':
        return null;
      case 'garbage':
        return Buffer.concat([chunk, r.bytes(1 + (r.rnd() % 300))]);
      case 'replay':
        return Buffer.concat([chunk, chunk]);
      case 'close':
        return null;
      // A record header that announces a length the stream never delivers, or a wrong type or version.
      case 'header': {
        const c = copy(chunk);
        if (c.length >= 5) {
          c[r.rnd() % 5] = r.rnd() & 0xff;
        }
        return c;
      }
      default:
        return chunk;
    }
  };
}

/** Bytes that are not a TLS ClientHello, sent where one is expected. */
function notAClientHello(r) {
  return r.pick([
    () => r.bytes(1 + (r.rnd() % 512)),
    () => Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), u16(r.rnd() % 0x10000), r.bytes(r.rnd() % 256)]),
    () => Buffer.concat([Buffer.from([0x16, 0x03, 0x03, 0xff, 0xff]), r.bytes(16)]), // a record never completed
    () => Buffer.concat([Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02]), r.bytes(45)]), // SSLv2 hello
    () => Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'),
    () => option(NBD_OPT.GO, goData('d0', [])), // NBD in clear after the ACK
    () => Buffer.concat([Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])]), // a fatal alert
  ])();
}

/** Scans what the server sent for NBD_OPT_GO's ACK and for transmission replies. */
function sawEntry(buf) {
  const goAck = Buffer.concat([OPT_REPLY_MAGIC, u32(NBD_OPT.GO), u32(REP_ACK)]);
  if (buf.indexOf(goAck) >= 0) return 'NBD_OPT_GO ACK';
  // A reply to our READ (handle 0x5eed, at offset 8 in simple, structured and extended replies):
  // only transmission sends one.
  for (const m of REPLY_MAGICS) {
    for (let i = buf.indexOf(m); i >= 0 && buf.length >= i + 16; i = buf.indexOf(m, i + 1)) {
      if (buf.readBigUInt64BE(i + 8) === 0x5eedn) return 'transmission';
    }
  }
  return null;
}

/**
 * One fuzz connection. Resolves with { cred, entered } (entered: what the client reached, or
 * null). Never throws. `force` = a credential: a clean STARTTLS, TLS with it, GO and READ.
 */
function fuzzConnection(r, sock, creds, force = null) {
  return new Promise((resolve) => {
    const raw = net.connect(sock);
    let clear = Buffer.alloc(0);
    let inside = Buffer.alloc(0);
    let secure = null;
    let done = false;
    let cred = 'none';
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(t);
      secure?.destroy();
      raw.destroy();
      // Only what came before STARTTLS's ACK is clear text; the rest is TLS records.
      resolve({ cred, entered: sawEntry(clear) ?? sawEntry(inside) });
    };
    const t = setTimeout(finish, CONN_MS);
    raw.on('error', finish);
    raw.on('close', finish);
    raw.on('data', (d) => {
      if (secure === null && clear.length < 65536) clear = Buffer.concat([clear, d]);
    });
    const starttls = option(NBD_OPT.STARTTLS, Buffer.alloc(0));
    const ackOf = (opt) => Buffer.concat([OPT_REPLY_MAGIC, u32(opt), u32(REP_ACK)]);
    const waitFor = (pattern, ms) =>
      new Promise((res) => {
        const t0 = Date.now();
        const poll = () => {
          if (done || clear.indexOf(pattern) >= 0) res(!done);
          else if (Date.now() - t0 > ms) res(false);
          else setTimeout(poll, 2);
        };
        poll();
      });

    raw.on('connect', async () => {
      const scenario =
        force !== null
          ? 'clean'
          : r.pick(['clear', 'dataWithStarttls', 'early', 'twice', 'garbage', 'abrupt', 'tls', 'tls', 'tls', 'tls', 'tls', 'tls']);
      const clean = scenario === 'clean';
      const flags = clean || r.chance(0.95) ? u32(3) : u32(r.rnd());
      // Options before STARTTLS: each must get ERR_TLS_REQD on this server.
      const before =
        !clean && r.chance(0.4)
          ? handshakeFrames(r)
              .slice(1)
              .slice(0, 1 + (r.rnd() % 3))
          : [];
      if (scenario === 'clear') {
        for (const f of handshakeFrames(r)) {
          if (done) return;
          raw.write(f);
          await tick();
        }
        raw.write(option(NBD_OPT.GO, goData('d0', [])));
        raw.write(Buffer.concat([u32(0x25609513), u16(0), u16(0), u64(0x5eed), u64(0), u32(512)]));
        setTimeout(finish, 30);
        return;
      }
      raw.write(flags);
      for (const f of before) raw.write(f);
      if (scenario === 'dataWithStarttls') {
        raw.write(option(NBD_OPT.STARTTLS, r.bytes(1 + (r.rnd() % 64))));
        if (r.chance(0.5)) raw.write(option(NBD_OPT.GO, goData('d0', [])));
        setTimeout(finish, 30);
        return;
      }
      if (scenario === 'early' || scenario === 'twice') {
        // Data after STARTTLS in the same write, before the ACK could be read.
        raw.write(Buffer.concat([starttls, scenario === 'twice' ? starttls : notAClientHello(r)]));
        setTimeout(finish, 50);
        return;
      }
      raw.write(starttls);
      if (!(await waitFor(ackOf(NBD_OPT.STARTTLS), 1000))) {
        finish();
        return;
      }
      if (scenario === 'garbage') {
        raw.write(notAClientHello(r));
        if (r.chance(0.3)) raw.write(notAClientHello(r));
        setTimeout(finish, r.chance(0.5) ? 5 : 100);
        return;
      }
      cred = force ?? r.pick(CREDS);
      const tamper = scenario === 'clean' ? (chunk) => chunk : tamperer(r);
      secure = tls.connect({ ...tlsOptions(cred, creds), socket: scenario === 'abrupt' ? raw : new Tamper(raw, tamper) });
      secure.on('error', finish);
      secure.on('close', finish);
      secure.on('data', (d) => {
        if (inside.length < 65536) inside = Buffer.concat([inside, d]);
      });
      if (scenario === 'abrupt') {
        setTimeout(finish, r.rnd() % 40);
        return;
      }
      secure.on('secureConnect', async () => {
        // Inside TLS: random options (STARTTLS again among them), then GO and requests.
        const frames = scenario === 'clean' ? [] : handshakeFrames(r).slice(1);
        if (scenario !== 'clean' && r.chance(0.3)) frames.unshift(starttls);
        for (const f of r.chance(0.3) ? frames : []) {
          if (done) return;
          secure.write(f);
          await tick();
        }
        if (done) return;
        secure.write(option(NBD_OPT.GO, goData('d0', [])));
        secure.write(Buffer.concat([u32(0x25609513), u16(0), u16(0), u64(0x5eed), u64(0), u32(512)]));
        const n = scenario === 'clean' ? 0 : r.rnd() % 16;
        for (let i = 0; i < n && !done; i++) secure.write(request(r, false));
        if (scenario === 'clean') {
          // Wait for the answer (or the close): the verdict of this connection must be sure.
          const t0 = Date.now();
          while (!done && sawEntry(inside) === null && Date.now() - t0 < 2000) await new Promise((res) => setTimeout(res, 5));
          finish();
          return;
        }
        if (r.chance(0.3)) secure.write(disc(false));
        setTimeout(finish, r.chance(0.3) ? 1 : 60);
      });
    });
  });
}

/** An entitled client must get in and READ: STARTTLS, TLS with `cred`, GO, READ. */
function health(sock, creds, cred) {
  return new Promise((resolve, reject) => {
    const raw = net.connect(sock);
    let clear = Buffer.alloc(0);
    const t = setTimeout(() => {
      raw.destroy();
      reject(new FuzzFailure('tls health check: no STARTTLS ACK in time: the server hangs'));
    }, HEALTH_MS);
    raw.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    const onData = (d) => {
      clear = Buffer.concat([clear, d]);
      if (clear.indexOf(Buffer.concat([OPT_REPLY_MAGIC, u32(NBD_OPT.STARTTLS), u32(REP_ACK)])) < 0) return;
      clearTimeout(t);
      raw.off('data', onData);
      const secure = tls.connect({ ...tlsOptions(cred, creds), socket: raw });
      secure.once('secureConnect', () => {
        healthOn(secure, { flags: false }).then(resolve, reject);
      });
      secure.once('error', (e) => reject(new FuzzFailure(`tls health check: ${e.message}`)));
    };
    raw.on('data', onData);
    raw.write(Buffer.concat([u32(3), option(NBD_OPT.STARTTLS, Buffer.alloc(0))]));
  });
}

/** Runs `total` connections, `parallel` at a time; each result goes to onResult. */
async function pool(total, parallel, one, onResult) {
  let started = 0;
  const worker = async () => {
    while (started < total) {
      started++;
      onResult(await one());
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

/** Fuzzes each TLS server in turn with half the connections; returns { summary, findings }. */
export async function fuzzTls(r, dir, { conns: CONNS, quiet, requireAuth }) {
  const certs = path.join(dir, 'tls');
  fs.mkdirSync(certs);
  const creds = makeCredentials(certs);
  const started = Date.now();
  const summaries = [];
  const findings = [];
  for (const server of SERVERS) {
    const { summary, bypass } = await fuzzOne(r, dir, server, creds, Math.ceil(CONNS / SERVERS.length), quiet);
    summaries.push(summary);
    const n = [...bypass.values()].reduce((a, b) => a + b, 0);
    if (n > 0)
      findings.push(
        `tls (${server.name}): ${n} connection(s) reached NBD_OPT_GO or transmission without an authorized credential (${fmt(bypass)})`,
      );
  }
  if (requireAuth && findings.length > 0) throw new FuzzFailure(findings.join('; '));
  const secs = (Date.now() - started) / 1000;
  return { summary: `fuzz tls: ${CONNS} connections in ${secs.toFixed(1)} s; ${summaries.join('; ')}; no crash, hang or leak`, findings };
}

const fmt = (m) => [...m].map(([k, v]) => `${k}: ${v}`).join(', ') || 'none';

async function fuzzOne(r, dir, server, creds, conns, quiet) {
  const sock = path.join(dir, 'tls.sock');
  const c = (f) => path.join(dir, 'tls', f);
  // A client that closes after STARTTLS's ACK holds its connection until the handshake timeout
  // (the server does not see the close): a short one keeps the fd check below from racing it.
  const srv = await startServer(
    [
      '--no-rpc',
      '--listen',
      `unix:${sock}`,
      '--aio',
      `${path.join(dir, 'tls.img')},name=d0,size=${SIZE}`,
      '--handshake-timeout',
      '3',
      ...server.flags(c),
    ],
    { cwd: dir, tag: 'tls' },
  );
  const tag = `tls (${server.name})`;
  try {
    await health(sock, creds, server.healthCred);
    const fdBase = fds(srv.pid);
    const aioServing = aioCtx(srv.pid);
    const started = Date.now();
    let done = 0;
    let maxRss = checkAlive(srv, tag, MAX_RSS_MIB);
    const ok = (cred) => server.entitled.includes(cred) || server.mayAdmit.includes(cred);
    const bypass = new Map(); // credential -> connections that got in without being entitled to
    const admitted = new Map(); // credential -> connections that got in, entitled
    let failure = null;
    // Each credential once, cleanly, so that every run sees who gets in; then the fuzz.
    for (const cred of CREDS) {
      const res = await fuzzConnection(r, sock, creds, cred);
      if (res.entered !== null) (ok(cred) ? admitted : bypass).set(cred, 1);
      else if (server.entitled.includes(cred)) throw new FuzzFailure(`${tag}: a client with the credential ${cred} was not let in`);
    }
    await pool(
      conns,
      8,
      async () => {
        if (failure !== null) return null;
        const res = await fuzzConnection(r, sock, creds);
        done++;
        try {
          maxRss = Math.max(maxRss, checkAlive(srv, tag, MAX_RSS_MIB));
          if (done % HEALTH_EVERY === 0) {
            await health(sock, creds, server.healthCred);
            if (!quiet)
              process.stderr.write(
                `fuzz ${tag}: ${done} connections, ${((Date.now() - started) / 1000).toFixed(0)} s, rss ${maxRss.toFixed(0)} MiB\n`,
              );
          }
        } catch (e) {
          failure ??= e;
        }
        return res;
      },
      (res) => {
        if (res === null || res.entered === null) return;
        const m = ok(res.cred) ? admitted : bypass;
        m.set(res.cred, (m.get(res.cred) ?? 0) + 1);
      },
    );
    if (failure !== null) throw failure;
    await health(sock, creds, server.healthCred);
    await checkNoLeak(srv, tag, fdBase, aioServing);
    await srv.stop();
    fs.rmSync(path.join(dir, 'tls.img'), { force: true });
    return {
      summary: `${server.name}: authorized admitted ${fmt(admitted)}, unauthorized admitted ${fmt(bypass)}, peak RSS ${maxRss.toFixed(0)} MiB, ${fdBase} fds and ${aioServing} AIO context(s) before and after`,
      bypass,
    };
  } finally {
    srv.kill();
  }
}
