import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadTls, parsePskFile } from '../../src/nbd/tls.js';
import { UsageError } from '../../src/errors.js';
import { startInProcess, type TestServer } from '../helpers/inproc.js';
import { run } from '../helpers/run.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { tool } from '../helpers/tools.js';
import { RawClient, goData, option, readOptReply } from '../helpers/wire.js';

const have = tool('openssl', 'nbdinfo', 'qemu-img');
const REP = { ACK: 1, ERR_INVALID: 0x80000003, ERR_POLICY: 0x80000002, ERR_TLS_REQD: 0x80000005 };

function openssl(args: string[], cwd: string): void { execFileSync('openssl', args, { cwd, stdio: 'ignore' }); }

/** A CA, a server certificate for localhost and a client certificate, as libnbd and QEMU want them in a directory. */
function makeCerts(dir: string): void {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca-cert.pem', '-days', '2', '-subj', '/CN=aionbd test CA'], dir);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  for (const who of ['server', 'client']) {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}-key.pem`, '-out', `${who}.csr`, '-subj', `/CN=${who === 'server' ? 'localhost' : 'aionbd client'}`], dir);
    openssl(['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca-cert.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', `${who}-cert.pem`, '-days', '2', '-extfile', 'ext.cnf'], dir);
  }
  fs.writeFileSync(path.join(dir, 'keys.psk'), `alice:${'5a'.repeat(32)}\n`);
}

describe('PSK files', () => {
  it('parses identity:hexkey lines and refuses anything else', () => {
    const m = parsePskFile('# made by psktool\nalice:0a0b0c\nbob:ffee\n');
    expect([...m.keys()]).toEqual(['alice', 'bob']);
    expect(m.get('alice')?.toString('hex')).toBe('0a0b0c');
    expect(() => parsePskFile('alice:xyz\n')).toThrow(UsageError);
    expect(() => parsePskFile('\n')).toThrow(/no identity/);
  });
  it('needs credentials for TLS, and pairs cert with key', () => {
    expect(loadTls({})).toBeNull();
    expect(() => loadTls({ mode: 'require' })).toThrow(/--tls-cert and --tls-key, or --tls-psk/);
    expect(() => loadTls({ cert: '/nonexistent' })).toThrow(/go together/);
    expect(() => loadTls({ cert: '/nonexistent/c.pem', key: '/nonexistent/k.pem' })).toThrow(/cannot read the TLS certificate/);
  });
});

describe.skipIf(!have)('STARTTLS with real clients', () => {
  let certs: string;
  let srv: TestServer | null = null;
  beforeAll(() => { certs = tmpDir('aionbd-tls-'); makeCerts(certs); }, 60_000);
  afterAll(() => rmrf(certs));
  afterEach(async () => { await srv?.close(); srv = null; });

  const x509 = (extra: { mode?: 'on' | 'require'; ca?: boolean } = {}) => loadTls({
    mode: extra.mode, cert: path.join(certs, 'server-cert.pem'), key: path.join(certs, 'server-key.pem'),
    ca: extra.ca === true ? path.join(certs, 'ca-cert.pem') : undefined,
  });

  it('nbdinfo over nbds+unix with X.509, and qemu-img with tls-creds-x509', async () => {
    srv = await startInProcess([{ name: 'd0', size: 16 << 20 }], { tls: x509() });
    const r = await run('nbdinfo', [`nbds+unix:///d0?socket=${srv.socketPath}&tls-certificates=${certs}`], { timeoutMs: 20_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/with TLS/);
    expect(r.stdout).toMatch(/export-size: 16777216/);
    const q = await run('qemu-img', ['info', '--object', `tls-creds-x509,id=tls0,dir=${certs},endpoint=client`, '--image-opts',
      `driver=nbd,path=${srv.socketPath},export=d0,tls-creds=tls0,tls-hostname=localhost`], { timeoutMs: 20_000 });
    expect(q.code).toBe(0);
    expect(q.stdout).toMatch(/16777216 bytes/);
  }, 60_000);

  it('nbdinfo with a PSK', async () => {
    srv = await startInProcess([{ name: 'd0', size: 16 << 20 }], { tls: loadTls({ psk: path.join(certs, 'keys.psk') }) });
    const ok = await run('nbdinfo', ['--size', `nbds+unix://alice@/d0?socket=${srv.socketPath}&tls-psk-file=${path.join(certs, 'keys.psk')}`], { timeoutMs: 20_000 });
    expect(ok.stdout.trim()).toBe('16777216');
    fs.writeFileSync(path.join(certs, 'wrong.psk'), `alice:${'11'.repeat(32)}\n`);
    const bad = await run('nbdinfo', ['--size', `nbds+unix://alice@/d0?socket=${srv.socketPath}&tls-psk-file=${path.join(certs, 'wrong.psk')}`], { timeoutMs: 20_000 });
    expect(bad.code).not.toBe(0);
  }, 60_000);

  it('verifies client certificates with --tls-ca', async () => {
    srv = await startInProcess([{ name: 'd0', size: 16 << 20 }], { tls: x509({ ca: true }) });
    const ok = await run('nbdinfo', ['--size', `nbds+unix:///d0?socket=${srv.socketPath}&tls-certificates=${certs}`], { timeoutMs: 20_000 });
    expect(ok.stdout.trim()).toBe('16777216');
    const noClient = tmpDir('aionbd-tls-ca-');
    fs.copyFileSync(path.join(certs, 'ca-cert.pem'), path.join(noClient, 'ca-cert.pem'));
    const bad = await run('nbdinfo', ['--size', `nbds+unix:///d0?socket=${srv.socketPath}&tls-certificates=${noClient}`], { timeoutMs: 20_000 });
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
    await new Promise<void>((resolve, reject) => { secure.once('secureConnect', resolve); secure.once('error', reject); });
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
