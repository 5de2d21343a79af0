import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/server.js';

describe('error codes', () => {
  it('every AIONBD_* code the source raises is documented in the README', () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const codes = new Set<string>();
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (p.endsWith('.ts'))
          for (const m of fs.readFileSync(p, 'utf8').matchAll(/code\s*[=:]\s*'(AIONBD_[A-Z0-9_]+)'/g)) codes.add(m[1] as string);
      }
    };
    walk(path.join(REPO_ROOT, 'src'));
    expect(codes.size).toBeGreaterThan(10);
    expect([...codes].filter((c) => !readme.includes(c))).toEqual([]);
  });

  it('.ci/run calls the README test command', () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('npm install && npx aionbd serve');
    expect(readme).toMatch(/```sh\nnpm test\n```/);
    expect(fs.readFileSync(path.join(REPO_ROOT, '.ci', 'run'), 'utf8')).toMatch(/\bnpm test\b/);
  });
});
