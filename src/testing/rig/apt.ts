// Fetches Debian's kernel package with `apt-get download`: the metapackage first, whose
// Depends names the real, versioned kernel package.

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';

import { run, runOk } from './run.js';

const META_PACKAGE = 'linux-image-amd64';

export interface Downloaded {
  deb: string;
  pkg: string;
  debVersion: string;
}

function aptOptions(): string[] {
  // apt drops to the _apt user for downloads and warns when that user cannot
  // write to the (temporary) target directory; as root there is nothing to
  // gain from the sandbox for a plain download.
  return process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
}

async function aptDownload(dir: string, spec: string): Promise<string> {
  const before = new Set(await fsp.readdir(dir));
  await runOk('apt-get', [...aptOptions(), '-q', 'download', spec], { cwd: dir });
  const added = (await fsp.readdir(dir)).filter((f) => !before.has(f) && f.endsWith('.deb'));
  const first = added[0];
  if (added.length !== 1 || first === undefined) {
    throw new Error(`apt-get download ${spec} left ${added.length} new .deb files in ${dir}`);
  }
  return join(dir, first);
}

/** Parses the metapackage's Depends into the real, versioned kernel package. */
export function parseKernelDepends(depends: string): { pkg: string; version: string | undefined } {
  for (const alt of depends.split(/[,|]/)) {
    const m = /^\s*(linux-image-[^\s(]+)\s*(?:\(\s*=\s*([^\s)]+)\s*\))?/.exec(alt);
    if (m?.[1] !== undefined) return { pkg: m[1], version: m[2] };
  }
  throw new Error(`no linux-image-* package in Depends: ${depends}`);
}

/** Downloads the kernel package of the metapackage into `dir`, after an apt-get update if the lists are stale. */
export async function downloadKernelPackage(dir: string): Promise<Downloaded> {
  let announced = false;
  const attempt = async (): Promise<Downloaded> => {
    const meta = await aptDownload(dir, META_PACKAGE);
    const depends = (await runOk('dpkg-deb', ['-f', meta, 'Depends'])).toString('utf8').trim();
    const { pkg, version } = parseKernelDepends(depends);
    if (!announced) {
      announced = true;
      process.stderr.write(`aionbd: fetching Debian kernel package ${pkg} with apt-get download (first run only)\n`);
    }
    const deb = await aptDownload(dir, version !== undefined ? `${pkg}=${version}` : pkg);
    const debVersion = (await runOk('dpkg-deb', ['-f', deb, 'Version'])).toString('utf8').trim();
    return { deb, pkg, debVersion };
  };
  try {
    return await attempt();
  } catch (first) {
    // Missing or stale package lists are the usual cause (a fresh container,
    // or a security update that replaced the version the lists point at).
    const upd = await run('apt-get', ['-q', 'update']);
    if (upd.code !== 0) {
      throw new Error(`${(first as Error).message}\n(apt-get update also failed, exit ${upd.code}: ${upd.stderr.trim()})`);
    }
    for (const f of await fsp.readdir(dir)) await fsp.rm(join(dir, f), { recursive: true, force: true });
    return attempt();
  }
}
