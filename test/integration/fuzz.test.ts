import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, requireBuilt } from '../helpers/server.js';
import { run } from '../helpers/run.js';
import { tool } from '../helpers/tools.js';

const FUZZ = path.join(REPO_ROOT, 'scripts', 'fuzz.mjs');
const fuzz = (seed: number, args: string[]) =>
  run(process.execPath, [FUZZ, '--seed', String(seed), '--quiet', ...args], { timeoutMs: 150_000 });

describe('fuzzer', () => {
  it('throws random NBD frames, broken STARTTLS and TLS, and bad JSON-RPC at servers: no crash, hang or leak', async () => {
    requireBuilt();
    const seed = Math.floor(Math.random() * 2 ** 31);
    const parts = tool('openssl') ? 'nbd,tls,rpc' : 'nbd,rpc';
    const r = await fuzz(seed, ['--parts', parts, '--frames', '10000', '--tls-conns', '200', '--rpc-conns', '300']);
    expect(r.code, `seed ${seed}\n${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/fuzz nbd: \d+ frames over \d+ connections .* no crash, hang or leak/);
    if (parts.includes('tls')) expect(r.stdout).toMatch(/fuzz tls: 200 connections .* no crash, hang or leak/);
    expect(r.stdout).toMatch(/fuzz rpc: 300 connections, \d+ responses .* no crash, hang or leak/);
  }, 180_000);

  // Fails if --tls-ca ever lets in a client with a certificate the CA never signed.
  it.skipIf(!tool('openssl'))(
    'lets no TLS client in without a trusted certificate or a known pre-shared key',
    async () => {
      requireBuilt();
      const seed = Math.floor(Math.random() * 2 ** 31);
      const r = await fuzz(seed, ['--parts', 'tls', '--tls-conns', '200', '--require-auth']);
      expect(r.stdout + r.stderr, `seed ${seed}`).not.toMatch(/without an authorized credential/);
      expect(r.code, `seed ${seed}\n${r.stdout}\n${r.stderr}`).toBe(0);
    },
    180_000,
  );
});
