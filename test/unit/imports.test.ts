// The static import graph of src/ (type imports included): the control layer (JSON-RPC, the
// embedded Server) sits on top of the core target and the bdev modules, with no cycle through
// any of them, and the core layers never import the control layer.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/server.js';

const SRC = path.join(REPO_ROOT, 'src');

/** `import ... from '...'`, `import '...'`, `export ... from '...'`, `import type ...` alike. */
const IMPORT = /(?:^|[\n;])\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"](\.[^'"]+)['"]/g;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** File (relative to src/) -> the files of src/ it imports. */
function importGraph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of sourceFiles(SRC)) {
    const text = fs
      .readFileSync(f, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    const to = [...text.matchAll(IMPORT)].map((m) =>
      path.relative(SRC, path.resolve(path.dirname(f), (m[1] ?? '').replace(/\.js$/, '.ts'))),
    );
    g.set(path.relative(SRC, f), to);
  }
  return g;
}

/** The strongly connected components with more than one file, or a file importing itself (Tarjan). */
function cycles(g: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>(),
    low = new Map<string, number>(),
    stack: string[] = [],
    onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    for (let w = stack.pop(); w !== undefined; w = w === v ? undefined : stack.pop()) {
      onStack.delete(w);
      scc.push(w);
    }
    if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.sort());
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

/** The control layer and the modules: no import cycle may pass through these. */
const CONTROLLED = [/^rpc\//, /^modules\//, /^target\.ts$/, /^server\.ts$/, /^method(_form)?\.ts$/, /^bdev\/module\.ts$/, /^cli\/rpc/];
/** The core: it must not import the control layer, the module list or the CLI. */
const CORE = [/^bdev\//, /^nbd\//, /^util\//, /^metrics\//, /^target\.ts$/, /^method(_form)?\.ts$/, /^errors\.ts$/, /^log\.ts$/];
const ABOVE_CORE = [/^rpc\//, /^modules\//, /^server\.ts$/, /^cli\//, /^index\.ts$/];

describe('the import graph of src/', () => {
  const g = importGraph();

  it('is read (every file, imports found)', () => {
    expect(g.size).toBeGreaterThan(100);
    expect(g.get('index.ts')?.length ?? 0).toBeGreaterThan(10);
  });

  it('has no cycle through the JSON-RPC layer, the target, the server or a module', () => {
    const bad = cycles(g).filter((c) => c.some((f) => CONTROLLED.some((re) => re.test(f))));
    expect(bad, bad.map((c) => `a cycle among ${c.join(', ')}`).join('\n')).toEqual([]);
  });

  it('keeps the core below the control layer: no import of src/rpc, src/modules, the server or the CLI', () => {
    const up: string[] = [];
    for (const [f, to] of g) {
      if (!CORE.some((re) => re.test(f))) continue;
      for (const t of to) if (ABOVE_CORE.some((re) => re.test(t))) up.push(`${f} imports ${t}`);
    }
    expect(up).toEqual([]);
  });

  it('the target knows no module by name', () => {
    const text = fs.readFileSync(path.join(SRC, 'target.ts'), 'utf8');
    expect(text.match(/'(aio|malloc|error|delay|raid|split|lvol|rbd)'/g) ?? []).toEqual([]);
  });
});
