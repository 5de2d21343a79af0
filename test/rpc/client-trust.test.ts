// `aionbd rpc` / `attach` talk to a socket path that may sit in a directory anyone can write
// (/var/tmp). Another user who binds that path first must get neither our request (it names
// files) nor the chance to forge an answer: the client judges the peer by SO_PEERCRED.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain, run } from '../helpers/run.js';
import { BIN, requireBuilt } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';
import { onPath } from '../helpers/tools.js';

// A JSON-RPC impostor: answers every connection with a forged result and prints what it got.
const IMPOSTOR = `
const net = require('net'), fs = require('fs');
const p = process.argv[1];
net.createServer((c) => {
  let n = 0;
  c.on('data', (d) => { n += d.length; });
  c.on('error', () => {});
  c.on('close', () => console.log('got ' + n));
  c.write('{"jsonrpc":"2.0","id":1,"result":"/dev/nbd-forged"}');
}).listen(p, () => { fs.chmodSync(p, 0o777); console.log('ready'); });
`;

const root = process.geteuid?.() === 0;

describe.skipIf(!root || !onPath('setpriv'))('the JSON-RPC client trusts only its own user or root', () => {
  let dir: string;
  let impostor: ChildProcess;
  let out = '';
  beforeAll(async () => {
    requireBuilt();
    dir = tmpDir('aionbd-rpc-trust-');
    fs.chmodSync(dir, 0o1777); // like /var/tmp
    impostor = spawn(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', IMPOSTOR, path.join(dir, 'aionbd.sock')],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    impostor.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const deadline = Date.now() + 10_000;
    while (!out.includes('ready') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(out).toContain('ready');
  });
  afterAll(() => {
    impostor.kill('SIGKILL');
    rmrf(dir);
  });

  it('refuses a socket served by another user, before sending it anything', async () => {
    const sock = path.join(dir, 'aionbd.sock');
    const r = await run(process.execPath, [BIN, 'rpc', '-s', sock, 'bdev_aio_create', '/secret/path.img', 'x', '512'], {
      timeoutMs: 20_000,
    });
    expect(r.code, explain(r)).toBe(1);
    expect(r.stderr).toMatch(
      /^aionbd: .*aionbd\.sock is served by uid 65534 \(pid \d+\), neither you nor root: not sending it bdev_aio_create\n$/,
    );
    expect(r.stdout).not.toContain('forged');
    const a = await run(process.execPath, [BIN, 'attach', 'disk0', '-s', sock], { timeoutMs: 20_000 });
    expect(a.code, explain(a)).toBe(1);
    expect(a.stdout + a.stderr).not.toContain('forged');
    await new Promise((r) => setTimeout(r, 300));
    // The impostor saw two connections and not one byte on either.
    expect(out.match(/got (\d+)/g)).toEqual(['got 0', 'got 0']);
  });
});
