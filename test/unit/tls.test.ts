import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadTls, parsePskFile, type TlsFiles } from '../../src/nbd/tls.js';
import { UsageError } from '../../src/errors.js';
import { makeCerts, type Certs } from '../helpers/certs.js';
import { startInProcess, type TestServer } from '../helpers/inproc.js';
import { run } from '../helpers/run.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';
import { RawClient, goData, option, readOptReply } from '../helpers/wire.js';

const have = tool('openssl', 'nbdinfo', 'qemu-img');
const REP = { ACK: 1, ERR_INVALID: 0x80000003, ERR_POLICY: 0x80000002, ERR_TLS_REQD: 0x80000005 };

describe('PSK files', () => {
  const k1 = '0a'.repeat(16);
  const k2 = 'ff'.repeat(32);
  it('parses identity:hexkey lines, skipping blanks and comments', () => {
    const m = parsePskFile(`# made by psktool\r\nalice:${k1}\r\n\n  bob:${k2.toUpperCase()}  \n`);
    expect([...m.keys()]).toEqual(['alice', 'bob']);
    expect(m.get('alice')?.toString('hex')).toBe(k1);
    expect(m.get('bob')?.toString('hex')).toBe(k2);
  });
  it.each([
    ['no entry at all', '# nothing\n\n', /holds no identity:hexkey line/],
    ['no colon', `alice ${k1}\n`, /line 1: expected identity:hexkey/],
    ['an empty identity', `:${k1}\n`, /line 1: expected identity:hexkey/],
    ['two colons', `a:b:${k1}\n`, /line 1: expected identity:hexkey/],
    ['a key that is not hex', 'alice:xyz\n', /line 1: expected identity:hexkey/],
    ['an empty key', 'alice:\n', /line 1: the key is 0 bytes; it must be 16 to 512/],
    ['an odd number of hex digits', `alice:${k1}a\n`, /line 1: the key has an odd number of hex digits/],
    ['a key under 128 bits', 'alice:0a0b0c\n', /line 1: the key is 3 bytes/],
    ['a key over 512 bytes', `alice:${'ab'.repeat(513)}\n`, /line 1: the key is 513 bytes/],
    ['an all-zero key', `alice:${'00'.repeat(32)}\n`, /line 1: the key is all zero bytes/],
    ['a duplicate identity', `alice:${k1}\n# again\nalice:${k2}\n`, /line 3: identity "alice" is already on line 1/],
    ['an identity over 128 bytes', `${'a'.repeat(129)}:${k1}\n`, /line 1: the identity is longer than 128 bytes/],
    ['a control character in the identity', `al\u0001ice:${k1}\n`, /line 1: the identity holds a control character/],
  ])('refuses %s', (_name, text, message) => {
    expect(() => parsePskFile(text, 'keys.psk')).toThrow(UsageError);
    expect(() => parsePskFile(text, 'keys.psk')).toThrow(message);
  });
});

describe('loadTls: flags that do not make one policy', () => {
  it('no flags is no TLS; a mode without credentials, or half a pair, is an error', () => {
    expect(loadTls({})).toBeNull();
    expect(loadTls({ mode: 'off' })).toBeNull();
    expect(() => loadTls({ mode: 'require' })).toThrow(/--tls-cert and --tls-key, or --tls-psk/);
    expect(() => loadTls({ cert: '/nonexistent' })).toThrow(/go together/);
    expect(() => loadTls({ cert: '/nonexistent/c.pem', key: '/nonexistent/k.pem' })).toThrow(/cannot read the TLS certificate/);
  });
  it('--tls-ca alone never falls back to plaintext', () => {
    expect(() => loadTls({ ca: '/nonexistent/ca.pem' })).toThrow(/--tls-ca \(client verification\) needs --tls-cert and --tls-key/);
  });
  it('--tls off with any credential, and --tls on with an authenticating one, contradict themselves', () => {
    expect(() => loadTls({ mode: 'off', psk: 'k.psk' })).toThrow(/--tls off contradicts --tls-psk/);
    expect(() => loadTls({ mode: 'off', cert: 'c', key: 'k', ca: 'ca' })).toThrow(/--tls off contradicts --tls-cert, --tls-key, --tls-ca/);
    expect(() => loadTls({ mode: 'on', psk: 'k.psk' })).toThrow(/--tls on lets clients skip TLS, so --tls-psk/);
    expect(() => loadTls({ mode: 'on', cert: 'c', key: 'k', ca: 'ca' })).toThrow(/--tls on lets clients skip TLS, so --tls-ca/);
    expect(() => loadTls({ cert: 'c', key: 'k', psk: 'k.psk' })).toThrow(/--tls-psk with --tls-cert\/--tls-key also needs --tls-ca/);
  });
});

describe.skipIf(!have)('loadTls: credential files', () => {
  let c: Certs;
  beforeAll(() => {
    c = makeCerts(tmpDir('aionbd-tls-load-'));
  }, 60_000);
  afterAll(() => rmrf(c.dir));
  const server = (): TlsFiles => ({ cert: c.file('server-cert.pem'), key: c.file('server-key.pem') });

  it('good credentials give the mode, the options and who is verified', () => {
    const x = loadTls({ ...server(), ca: c.file('ca-cert.pem'), psk: c.file('keys.psk') });
    expect(x?.mode).toBe('require');
    expect(x?.verifyClient).toBe(true);
    expect(x?.psk?.get('alice')).toEqual(c.alicePsk);
    expect(x?.options.ciphers).toMatch(/^TLS_AES_128_GCM_SHA256:.*:DEFAULT:PSK$/);
    expect(loadTls({ ...server(), mode: 'on' })?.verifyClient).toBe(false);
    expect(loadTls({ psk: c.file('keys.psk') })?.options.ciphers).toMatch(/:PSK$/);
  });
  it('refuses files without what they should hold', () => {
    expect(() => loadTls({ ...server(), ca: '/etc/passwd' })).toThrow(/the TLS CA file \/etc\/passwd holds no PEM certificate/);
    expect(() => loadTls({ ...server(), cert: '/etc/passwd' })).toThrow(/the TLS certificate file \/etc\/passwd holds no PEM certificate/);
    expect(() => loadTls({ ...server(), key: c.file('server-cert.pem') })).toThrow(/holds no PEM private key/);
    expect(() => loadTls({ ...server(), key: c.file('encrypted-key.pem') })).toThrow(/is encrypted/);
    expect(() => loadTls({ ...server(), key: c.file('client-key.pem') })).toThrow(/does not match the certificate/);
  });
  it('judges validity against the clock', () => {
    const expired = { cert: c.file('expired-cert.pem'), key: c.file('expired-key.pem') };
    expect(() => loadTls(expired)).toThrow(/CN=localhost in .*expired-cert\.pem expired on 2020-01-02/);
    expect(loadTls(expired, new Date('2020-01-01T12:00:00Z'))?.mode).toBe('require');
    expect(() => loadTls({ cert: c.file('future-cert.pem'), key: c.file('future-key.pem') })).toThrow(/is not valid before 2099-01-01/);
    // A CA file whose every certificate is out of date can verify no one.
    expect(() => loadTls({ ...server(), ca: c.file('ca-cert.pem') }, new Date('2099-06-01T00:00:00Z'))).toThrow(
      /outside its validity|expired/,
    );
  });
});

describe.skipIf(!have)('STARTTLS with real clients', () => {
  let certs: string;
  let srv: TestServer | null = null;
  beforeAll(() => {
    certs = makeCerts(tmpDir('aionbd-tls-')).dir;
  }, 60_000);
  afterAll(() => rmrf(certs));
  afterEach(async () => {
    await srv?.close();
    srv = null;
  });

  const x509 = (extra: { mode?: 'on' | 'require'; ca?: boolean } = {}) =>
    loadTls({
      mode: extra.mode,
      cert: path.join(certs, 'server-cert.pem'),
      key: path.join(certs, 'server-key.pem'),
      ca: extra.ca === true ? path.join(certs, 'ca-cert.pem') : undefined,
    });

  it('nbdinfo over nbds+unix with X.509, and qemu-img with tls-creds-x509', async () => {
    srv = await startInProcess([{ name: 'd0', size: 16 << 20 }], { tls: x509() });
    const r = await run('nbdinfo', [`nbds+unix:///d0?socket=${srv.socketPath}&tls-certificates=${certs}`], { timeoutMs: 20_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/with TLS/);
    expect(r.stdout).toMatch(/export-size: 16777216/);
    const q = await run(
      'qemu-img',
      [
        'info',
        '--object',
        `tls-creds-x509,id=tls0,dir=${certs},endpoint=client`,
        '--image-opts',
        `driver=nbd,path=${srv.socketPath},export=d0,tls-creds=tls0,tls-hostname=localhost`,
      ],
      { timeoutMs: 20_000 },
    );
    expect(q.code).toBe(0);
    expect(q.stdout).toMatch(/16777216 bytes/);
  }, 60_000);

  it('nbdinfo with a PSK', async () => {
    srv = await startInProcess([{ name: 'd0', size: 16 << 20 }], { tls: loadTls({ psk: path.join(certs, 'keys.psk') }) });
    const ok = await run(
      'nbdinfo',
      ['--size', `nbds+unix://alice@/d0?socket=${srv.socketPath}&tls-psk-file=${path.join(certs, 'keys.psk')}`],
      { timeoutMs: 20_000 },
    );
    expect(ok.stdout.trim()).toBe('16777216');
    fs.writeFileSync(path.join(certs, 'wrong.psk'), `alice:${'11'.repeat(32)}\n`);
    const bad = await run(
      'nbdinfo',
      ['--size', `nbds+unix://alice@/d0?socket=${srv.socketPath}&tls-psk-file=${path.join(certs, 'wrong.psk')}`],
      { timeoutMs: 20_000 },
    );
    expect(bad.code).not.toBe(0);
  }, 60_000);

  it('verifies client certificates with --tls-ca', async () => {
    srv = await startInProcess([{ name: 'd0', size: 16 << 20 }], { tls: x509({ ca: true }) });
    const ok = await run('nbdinfo', ['--size', `nbds+unix:///d0?socket=${srv.socketPath}&tls-certificates=${certs}`], {
      timeoutMs: 20_000,
    });
    expect(ok.stdout.trim()).toBe('16777216');
    const noClient = tmpDir('aionbd-tls-ca-');
    fs.copyFileSync(path.join(certs, 'ca-cert.pem'), path.join(noClient, 'ca-cert.pem'));
    const bad = await run('nbdinfo', ['--size', `nbds+unix:///d0?socket=${srv.socketPath}&tls-certificates=${noClient}`], {
      timeoutMs: 20_000,
    });
    rmrf(noClient);
    expect(bad.code).not.toBe(0);
  }, 60_000);

  it('require: options before STARTTLS get ERR_TLS_REQD, EXPORT_NAME closes; STARTTLS twice is ERR_INVALID', async () => {
    srv = await startInProcess([{ name: 'd0', size: 16 << 20 }], { tls: x509() });
    const c = await RawClient.connect(srv.socketPath);
    await c.read(18);
    c.write(Buffer.from([0, 0, 0, 3]));
    for (const opt of [6, 7, 3, 8, 99]) {
      c.write(option(opt, opt === 6 || opt === 7 ? goData('d0') : undefined));
      expect((await readOptReply(c)).type).toBe(REP.ERR_TLS_REQD);
    }
    c.write(option(5));
    expect((await readOptReply(c)).type).toBe(REP.ACK);
    // The TLS handshake on the same socket, then a second STARTTLS inside it.
    const secure = tls.connect({ socket: c.sock, ca: fs.readFileSync(path.join(certs, 'ca-cert.pem')), servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    const reply = new Promise<Buffer>((resolve) => secure.once('data', resolve));
    secure.write(option(5));
    const r = await reply;
    expect(r.readUInt32BE(12)).toBe(REP.ERR_INVALID);
    secure.destroy();
    c.close();
    const c2 = await RawClient.connect(srv.socketPath);
    await c2.read(18);
    c2.write(Buffer.from([0, 0, 0, 3]));
    c2.write(option(1, Buffer.from('d0')));
    expect(await c2.waitClosed(2000)).toBe(true);
  }, 60_000);

  it('on: TLS is offered but plain clients are served too; without TLS configured STARTTLS is ERR_POLICY', async () => {
    srv = await startInProcess([{ name: 'd0', size: 16 << 20 }], { tls: x509({ mode: 'on' }) });
    const plain = await run('nbdinfo', ['--size', `nbd+unix:///d0?socket=${srv.socketPath}`], { timeoutMs: 20_000 });
    expect(plain.stdout.trim()).toBe('16777216');
    await srv.close();
    srv = await startInProcess([{ name: 'd0', size: 16 << 20 }]);
    const c = await RawClient.connect(srv.socketPath);
    await c.read(18);
    c.write(Buffer.from([0, 0, 0, 3]));
    c.write(option(5));
    expect((await readOptReply(c)).type).toBe(REP.ERR_POLICY);
    c.close();
  }, 60_000);
});
