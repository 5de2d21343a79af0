#!/usr/bin/env node
// The package's install script: builds the addon with node-gyp unless build/Release/aionbd.node
// is newer than every native source. npm runs install scripts again in places a user does not
// expect (npm 11's `npx aionbd` in this directory links the package into its cache and
// reinstalls it), and `node-gyp rebuild` starts by deleting build/: an interrupted rebuild
// would leave no addon at all. `npm run build` still rebuilds unconditionally.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addon = path.join(root, 'build', 'Release', 'aionbd.node');

function mtime(p) {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return null;
  }
}

function newestSource() {
  const native = path.join(root, 'native');
  const files = fs.readdirSync(native).map((f) => path.join(native, f));
  return Math.max(
    ...[path.join(root, 'binding.gyp'), path.join(root, 'scripts', 'rbd-headers.mjs'), ...files].map((f) => mtime(f) ?? Infinity),
  );
}

// Whether the RBD bdev goes in depends on headers that appear when librbd-dev is installed (with
// old mtimes): the last build's answer is kept beside the addon and compared.
const rbdStamp = path.join(root, 'build', 'rbd-headers');
const rbdNow = spawnSync(process.execPath, [path.join(root, 'scripts', 'rbd-headers.mjs')], { encoding: 'utf8' }).stdout;
let rbdBuilt = null;
try {
  rbdBuilt = fs.readFileSync(rbdStamp, 'utf8');
} catch {
  /* never built here */
}

const built = mtime(addon);
if (built !== null && built >= newestSource() && rbdBuilt === rbdNow && process.env['AIONBD_REBUILD'] === undefined) {
  process.stdout.write('aionbd: native addon is up to date (AIONBD_REBUILD=1 forces a rebuild)\n');
  process.exit(0);
}
const r = spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit' });
if (r.error !== undefined) {
  process.stderr.write(`aionbd: cannot run node-gyp (${r.error.message}); it comes with npm: run "npm install" again\n`);
  process.exit(1);
}
if (r.status === 0) fs.writeFileSync(rbdStamp, rbdNow);
process.exit(r.status ?? 1);
