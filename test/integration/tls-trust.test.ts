// The TLS trust boundary, tried as an attacker would: real TLS clients (Node's and Python's
// OpenSSL, libnbd's GnuTLS) that complete STARTTLS with a certificate the CA never signed, no
// certificate, an unknown PSK identity or a wrong key must never see a byte of NBD; and every
// inconsistent or unusable TLS setting must stop `aionbd serve` at start with exit 2 and one line.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import { pino, type Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadTls, type TlsFiles } from '../../src/nbd/tls.js';
import { makeCerts, type Certs } from '../helpers/certs.js';
import { startInProcess, type TestServer } from '../helpers/inproc.js';
import { run } from '../helpers/run.js';
import { BIN, requireBuilt } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';
import { RawClient, goData, option, readOptReply, request } from '../helpers/wire.js';

const have = tool('openssl');
const NBD_OPT_GO = 7;
const NBD_OPT_STARTTLS = 5;
const NBD_REP_ACK = 1;
const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;

/** A logger whose lines the test can read: a refusal must say why. */
function captureLog(): { log: Logger; text: () => string } {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString('utf8');
      cb();
    },
  });
  return { log: pino({ level: 'info' }, sink), text: () => text };
}

interface Outcome {
  /** The client's own TLS handshake finished (in TLS 1.3 before the server has judged the client certificate). */
  secured: boolean;
  /** Every byte the server sent after the STARTTLS ACK, decrypted. */
  received: Buffer;
  closed: boolean;
}

/** Greeting, STARTTLS, then a TLS handshake with `opts` on the same socket; then GO and, if it is ACKed, one READ. */
async function attempt(socketPath: string, opts: tls.ConnectionOptions, timeoutMs = 5000): Promise<Outcome> {
  const c = await RawClient.connect(socketPath);
  await c.read(18);
  c.write(Buffer.from([0, 0, 0, 3]));
  c.write(option(NBD_OPT_STARTTLS));
  expect((await readOptReply(c)).type).toBe(NBD_REP_ACK);
  const secure = tls.connect({ socket: c.sock, checkServerIdentity: () => undefined, rejectUnauthorized: false, ...opts });
  let received = Buffer.alloc(0);
  let closed = false;
  let wake: () => void = () => undefined;
  secure.on('data', (d: Buffer) => {
    received = Buffer.concat([received, d]);
    wake();
  });
  secure.on('close', () => {
    closed = true;
    wake();
  });
  secure.on('error', () => {
    /* close follows */
  });
  const until = async (done: () => boolean): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!done() && !closed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, deadline - Date.now());
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  };
  const secured = await new Promise<boolean>((resolve) => {
    secure.once('secureConnect', () => resolve(true));
    secure.once('close', () => resolve(false));
  });
  if (secured) {
    secure.write(option(NBD_OPT_GO, goData('d0')));
    // INFO (NBD_INFO_EXPORT, 20 + 12 bytes) then ACK (20 bytes).
    await until(() => received.length >= 52);
    if (received.length >= 52 && received.readUInt32BE(52 - 8) === NBD_REP_ACK) {
      secure.write(request(0, { offset: 0, length: 512 }));
      await until(() => received.length >= 52 + 16 + 512);
    } else {
      await until(() => false);
    }
  }
  secure.destroy();
  c.close();
  return { secured, received, closed };
}

function expectServed(o: Outcome): void {
  expect(o.secured).toBe(true);
  expect(o.received.length).toBe(52 + 16 + 512);
  expect(o.received.readUInt32BE(52)).toBe(NBD_SIMPLE_REPLY_MAGIC);
  expect(o.received.readUInt32BE(56)).toBe(0);
}

function expectRefused(o: Outcome): void {
  expect(o.received.length).toBe(0);
  expect(o.closed).toBe(true);
}

// Python's ssl module: STARTTLS by hand, then a TLS client that offers
// whatever certificate it is given. Prints how many bytes came back after GO, and how it ended.
const PY_CLIENT = `
import json, socket, ssl, struct, sys
path, cert, key = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(path)
def recvn(n):
    b = b''
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d: raise EOFError
        b += d
    return b
recvn(18)
s.sendall(struct.pack('>I', 3) + b'IHAVEOPT' + struct.pack('>II', 5, 0))
h = recvn(20)
assert struct.unpack('>I', h[12:16])[0] == 1
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.load_cert_chain(cert, key)
name = b'd0'
got = b''
end = 'timeout'
try:
    # In TLS 1.3 the server judges the client's certificate after the client's last handshake
    # message: its refusal may land while wrap_socket is still running, or only after the GO.
    t = ctx.wrap_socket(s)
    t.sendall(b'IHAVEOPT' + struct.pack('>II', 7, 4 + len(name) + 2) + struct.pack('>I', len(name)) + name + struct.pack('>H', 0))
    while True:
        d = t.recv(4096)
        if not d:
            end = 'eof'
            break
        got += d
        if len(got) >= 52:
            end = 'served'
            break
except (ssl.SSLError, OSError) as e:
    end = 'error: ' + str(e)
print(json.dumps({'bytes': len(got), 'end': end}))
`;

function pythonClient(socketPath: string, cert: string, key: string): Promise<{ bytes: number; end: string }> {
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', PY_CLIENT, socketPath, cert, key], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`python client failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as { bytes: number; end: string });
    });
  });
}

describe.skipIf(!have)('TLS: only authenticated clients get past STARTTLS', () => {
  let certs: Certs;
  let srv: TestServer | null = null;
  beforeAll(() => {
    certs = makeCerts(tmpDir('aionbd-tls-trust-'));
  }, 120_000);
  afterAll(() => rmrf(certs.dir));
  afterEach(async () => {
    await srv?.close();
    srv = null;
  });

  const start = async (files: TlsFiles): Promise<() => string> => {
    const { log, text } = captureLog();
    srv = await startInProcess([{ name: 'd0', size: 1 << 20 }], { tls: loadTls(files), log });
    return text;
  };
  const x509 = (): TlsFiles => ({ cert: certs.file('server-cert.pem'), key: certs.file('server-key.pem'), ca: certs.file('ca-cert.pem') });
  const clientCert = (who: string): tls.ConnectionOptions => ({
    cert: fs.readFileSync(certs.file(`${who}-cert.pem`)),
    key: fs.readFileSync(certs.file(`${who}-key.pem`)),
  });
  const pskClient = (identity: string, key: Buffer): tls.ConnectionOptions => ({
    ciphers: 'PSK',
    maxVersion: 'TLSv1.2',
    pskCallback: () => ({ identity, psk: key }),
  });

  it('--tls-ca: a self-signed or foreign-CA client certificate is refused with the reason logged; a CA-signed one is served', async () => {
    const log = await start(x509());
    const sock = srv?.socketPath as string;
    for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
      expectRefused(await attempt(sock, { ...clientCert('mallory'), maxVersion: version }));
      expectRefused(await attempt(sock, { ...clientCert('rogue-client'), maxVersion: version }));
      expectRefused(await attempt(sock, { maxVersion: version }));
      expectServed(await attempt(sock, { ...clientCert('client'), maxVersion: version }));
    }
    expect(log()).toMatch(/client certificate refused: DEPTH_ZERO_SELF_SIGNED_CERT/);
    expect(log()).toMatch(/client certificate refused: UNABLE_TO_(GET_ISSUER_CERT_LOCALLY|VERIFY_LEAF_SIGNATURE)/);
    expect(log()).toMatch(/no client certificate/);
  }, 60_000);

  it('--tls-ca: Python ssl offering a self-signed certificate gets nothing after GO', async () => {
    await start(x509());
    const bad = await pythonClient(srv?.socketPath as string, certs.file('mallory-cert.pem'), certs.file('mallory-key.pem'));
    expect(bad.bytes).toBe(0);
    expect(bad.end).not.toBe('timeout');
    const good = await pythonClient(srv?.socketPath as string, certs.file('client-cert.pem'), certs.file('client-key.pem'));
    expect(good).toEqual({ bytes: 52, end: 'served' });
  }, 60_000);

  it('PSK: the right identity and key are served; an unknown identity or a wrong key is refused', async () => {
    const log = await start({ psk: certs.file('keys.psk') });
    const sock = srv?.socketPath as string;
    expectServed(await attempt(sock, pskClient('alice', certs.alicePsk)));
    expectRefused(await attempt(sock, pskClient('bob', certs.alicePsk)));
    expectRefused(await attempt(sock, pskClient('alice', Buffer.alloc(32, 7))));
    expect(log()).toMatch(/unknown PSK identity \\"bob\\"/);
    // libnbd (GnuTLS) negotiates TLS 1.3, where an external PSK looks like a resumed session.
    const ok = await run('nbdinfo', ['--size', `nbds+unix://alice@/d0?socket=${sock}&tls-psk-file=${certs.file('keys.psk')}`], {
      timeoutMs: 20_000,
    });
    expect(ok.stdout.trim()).toBe(String(1 << 20));
  }, 60_000);

  it('PSK and --tls-ca together: a PSK identity or a CA-signed certificate gets in, nothing else does', async () => {
    await start({ ...x509(), psk: certs.file('keys.psk') });
    const sock = srv?.socketPath as string;
    expectServed(await attempt(sock, pskClient('alice', certs.alicePsk)));
    expectServed(await attempt(sock, clientCert('client')));
    expectRefused(await attempt(sock, clientCert('mallory')));
    expectRefused(await attempt(sock, {}));
    expectRefused(await attempt(sock, { ...pskClient('alice', Buffer.alloc(32, 7)), ...clientCert('mallory') }));
    const ok = await run('nbdinfo', ['--size', `nbds+unix://alice@/d0?socket=${sock}&tls-psk-file=${certs.file('keys.psk')}`], {
      timeoutMs: 20_000,
    });
    expect(ok.stdout.trim()).toBe(String(1 << 20));
  }, 60_000);

  it('a client that goes away after the STARTTLS ACK, or halfway through the TLS handshake, is let go at once', async () => {
    await start(x509());
    const sock = srv?.socketPath as string;
    const gone = async (): Promise<number> => {
      const deadline = Date.now() + 2000; // the handshake timeout is 10 s: far beyond this
      while ((srv?.server.connections ?? 0) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      return srv?.server.connections ?? -1;
    };
    for (let round = 0; round < 2; round++) {
      const c = await RawClient.connect(sock);
      await c.read(18);
      c.write(Buffer.from([0, 0, 0, 3]));
      c.write(option(NBD_OPT_STARTTLS));
      expect((await readOptReply(c)).type).toBe(NBD_REP_ACK);
      // Round 0: close before any TLS byte; round 1: close after half a ClientHello.
      if (round === 1) c.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
      await new Promise((r) => setTimeout(r, 50));
      c.close();
      expect(await gone()).toBe(0);
    }
  }, 30_000);
});

describe.skipIf(!have)('TLS settings that cannot be honoured stop `aionbd serve` (exit 2, one line)', () => {
  let certs: Certs;
  let work: string;
  beforeAll(() => {
    certs = makeCerts(tmpDir('aionbd-tls-cli-'));
    work = tmpDir('aionbd-tls-cli-work-');
    const w = (name: string, text: string): void => fs.writeFileSync(path.join(work, name), text);
    w('empty', '');
    w('empty.psk', '# no keys yet\n\n');
    w('malformed.psk', `alice:${'ab'.repeat(32)}\nbob ${'cd'.repeat(32)}\n`);
    w('duplicate.psk', `alice:${'ab'.repeat(32)}\nalice:${'cd'.repeat(32)}\n`);
    w('short.psk', 'alice:0a0b0c\n');
    w('zero.psk', `alice:${'00'.repeat(32)}\n`);
    w('colon.psk', `a:b:${'ab'.repeat(32)}\n`);
  }, 120_000);
  afterAll(() => {
    rmrf(certs.dir);
    rmrf(work);
  });

  const c = (n: string): string => certs.file(n);
  const wk = (n: string): string => path.join(work, n);
  const server = (): string[] => ['--tls-cert', c('server-cert.pem'), '--tls-key', c('server-key.pem')];
  const cases: [string, () => string[], RegExp][] = [
    ['--tls-ca alone', () => ['--tls-ca', c('ca-cert.pem')], /^--tls-ca .*needs --tls-cert and --tls-key/],
    ['--tls-key alone', () => ['--tls-key', c('server-key.pem')], /go together/],
    ['--tls off with a certificate', () => ['--tls', 'off', ...server()], /^--tls off contradicts --tls-cert, --tls-key/],
    ['--tls off with a PSK file', () => ['--tls', 'off', '--tls-psk', c('keys.psk')], /^--tls off contradicts --tls-psk/],
    ['--tls on with --tls-ca', () => ['--tls', 'on', ...server(), '--tls-ca', c('ca-cert.pem')], /^--tls on lets clients skip TLS/],
    ['--tls on with --tls-psk', () => ['--tls', 'on', '--tls-psk', c('keys.psk')], /^--tls on lets clients skip TLS/],
    [
      '--tls-psk with a certificate but no --tls-ca',
      () => [...server(), '--tls-psk', c('keys.psk')],
      /^--tls-psk with --tls-cert\/--tls-key also needs --tls-ca/,
    ],
    [
      'a CA file with no certificate (/etc/passwd)',
      () => [...server(), '--tls-ca', '/etc/passwd'],
      /^the TLS CA file \/etc\/passwd holds no PEM certificate/,
    ],
    ['an empty CA file', () => [...server(), '--tls-ca', wk('empty')], /holds no PEM certificate/],
    [
      'a certificate file with no certificate',
      () => ['--tls-cert', '/etc/passwd', '--tls-key', c('server-key.pem')],
      /^the TLS certificate file \/etc\/passwd holds no PEM certificate/,
    ],
    [
      'a key file with no key',
      () => ['--tls-cert', c('server-cert.pem'), '--tls-key', c('server-cert.pem')],
      /^the TLS key file .* holds no PEM private key/,
    ],
    ['an encrypted key', () => ['--tls-cert', c('server-cert.pem'), '--tls-key', c('encrypted-key.pem')], /is encrypted/],
    [
      'a key that does not match the certificate',
      () => ['--tls-cert', c('server-cert.pem'), '--tls-key', c('client-key.pem')],
      /does not match the certificate/,
    ],
    [
      'an expired server certificate',
      () => ['--tls-cert', c('expired-cert.pem'), '--tls-key', c('expired-key.pem')],
      /expired on 2020-01-02/,
    ],
    [
      'a server certificate not yet valid',
      () => ['--tls-cert', c('future-cert.pem'), '--tls-key', c('future-key.pem')],
      /not valid before 2099-01-01/,
    ],
    ['an empty PSK file', () => ['--tls-psk', wk('empty.psk')], /holds no identity:hexkey line/],
    ['a malformed PSK line', () => ['--tls-psk', wk('malformed.psk')], /malformed\.psk line 2: expected identity:hexkey/],
    ['a duplicate PSK identity', () => ['--tls-psk', wk('duplicate.psk')], /line 2: identity "alice" is already on line 1/],
    ['a PSK key that is too short', () => ['--tls-psk', wk('short.psk')], /line 1: the key is 3 bytes; it must be 16 to 512/],
    ['an all-zero PSK key', () => ['--tls-psk', wk('zero.psk')], /line 1: the key is all zero bytes/],
    ['a PSK identity with a colon', () => ['--tls-psk', wk('colon.psk')], /line 1: expected identity:hexkey/],
  ];

  it.each(cases)(
    '%s',
    async (_name, args, message) => {
      requireBuilt();
      const d = tmpDir('aionbd-tls-cli-run-');
      try {
        const r = await run(
          process.execPath,
          [
            BIN,
            'serve',
            '--no-rpc',
            '--listen',
            `unix:${path.join(d, 'nbd.sock')}`,
            '--aio',
            `${path.join(d, 'd.img')},size=1M`,
            ...args(),
          ],
          { timeoutMs: 8000, cwd: d },
        );
        expect(r.timedOut).toBe(false);
        expect(r.code).toBe(2);
        // A failed start logs its JSON record first (stderr is not a terminal), then the one line.
        const lines = r.stderr.trim().split('\n');
        expect(lines).toHaveLength(2);
        expect(JSON.parse(lines[0] as string)).toMatchObject({ level: 50 });
        expect(lines[1]).toMatch(/^aionbd: /);
        expect((lines[1] as string).slice('aionbd: '.length)).toMatch(message);
      } finally {
        rmrf(d);
      }
    },
    20_000,
  );
});
