import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, requireBuilt } from '../helpers/server.js';
import { run } from '../helpers/run.js';

describe('fuzzer', () => {
  it('throws 10,000 random and mutated frames at a server: no crash, hang or leak', async () => {
    requireBuilt();
    const seed = Math.floor(Math.random() * 2 ** 31);
    const r = await run(process.execPath, [path.join(REPO_ROOT, 'scripts', 'fuzz.mjs'), '--frames', '10000', '--seed', String(seed), '--quiet'], { timeoutMs: 120_000 });
    expect(r.code, `seed ${seed}\n${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/fuzz: \d+ frames over \d+ connections .* no crash, hang or leak/);
  }, 150_000);
});
