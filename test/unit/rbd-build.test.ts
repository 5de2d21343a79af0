// The addon's RBD part and how it is built: librbd is opened at run time, never linked, and the
// sources that differ between a build with librbd's headers and one without (AIONBD_NO_RBD=1)
// both compile; the built addon says which it is.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { native } from '../../src/native.js';
import { run } from '../helpers/run.js';
import { REPO_ROOT } from '../helpers/server.js';
import { onPath } from '../helpers/tools.js';

const HEADERS = fs.existsSync('/usr/include/rbd/librbd.h') && fs.existsSync('/usr/include/rados/librados.h');

/** The node headers the addon was built against (node-gyp's nodedir), or null. */
function nodeInclude(): string | null {
  try {
    const m = /"nodedir": "([^"]+)"/.exec(fs.readFileSync(path.join(REPO_ROOT, 'build', 'config.gypi'), 'utf8'));
    const dir = m?.[1] !== undefined ? path.join(m[1], 'include', 'node') : null;
    return dir !== null && fs.existsSync(path.join(dir, 'node_api.h')) ? dir : null;
  } catch {
    return null; // not built with node-gyp here
  }
}

describe('the RBD part of the addon', () => {
  it('scripts/rbd-headers.mjs: 1 with the headers, 0 without or with AIONBD_NO_RBD', async () => {
    const script = path.join(REPO_ROOT, 'scripts', 'rbd-headers.mjs');
    const yes = await run(process.execPath, [script], { env: { ...process.env, AIONBD_NO_RBD: '' } });
    expect(yes.stdout).toBe(HEADERS ? '1' : '0');
    const no = await run(process.execPath, [script], { env: { ...process.env, AIONBD_NO_RBD: '1' } });
    expect(no.stdout).toBe('0');
  });

  it('this build matches the headers, and links no Ceph library (dlopen at first use)', async () => {
    const rbd = native().rbd;
    expect(rbd.available).toBe(HEADERS && (process.env['AIONBD_NO_RBD'] ?? '') === '');
    if (!rbd.available) expect(rbd.reason).toMatch(/install librbd-dev \(apt-get install librbd-dev\) and rebuild/);
    const addon = path.join(REPO_ROOT, 'build', 'Release', 'aionbd.node');
    if (onPath('readelf') && fs.existsSync(addon)) {
      const elf = await run('readelf', ['-d', addon]);
      expect(elf.stdout).toMatch(/NEEDED/);
      expect(elf.stdout).not.toMatch(/librbd|librados/);
    }
  });

  it.runIf(onPath('g++') && nodeInclude() !== null)(
    'the files that differ compile both with and without AIONBD_HAVE_RBD',
    async () => {
      const require = createRequire(import.meta.url);
      const napi = (require('node-addon-api') as { include_dir: string }).include_dir;
      const base = [
        '-fsyntax-only',
        '-std=c++17',
        '-Wall',
        '-Wextra',
        '-Werror',
        '-Wno-unused-parameter',
        '-DNAPI_VERSION=8',
        '-DNAPI_DISABLE_CPP_EXCEPTIONS',
        '-D_GNU_SOURCE',
        `-I${napi}`,
        `-I${nodeInclude() ?? ''}`,
      ];
      const files = ['addon.cc', 'rbd_init.cc'].map((f) => path.join(REPO_ROOT, 'native', f));
      const without = await run('g++', [...base, ...files], { timeoutMs: 120_000 });
      expect(without.code, without.stderr).toBe(0);
      if (HEADERS) {
        const withRbd = await run(
          'g++',
          [
            ...base,
            '-DAIONBD_HAVE_RBD',
            ...files,
            ...['rbd_lib.cc', 'rbd_cluster.cc', 'rbd_image.cc'].map((f) => path.join(REPO_ROOT, 'native', f)),
          ],
          { timeoutMs: 180_000 },
        );
        expect(withRbd.code, withRbd.stderr).toBe(0);
      }
    },
    240_000,
  );
});
