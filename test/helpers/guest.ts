// aionbd inside the QEMU guest. Node started from the shared checkout reads every module over
// uncached 9p, about 20 s per start under TCG; the same files unpacked once into the guest's
// tmpfs start in about 4 s. So the built package (bin, dist, the addon and the production
// dependencies from package-lock.json) goes into one tar file in the VM's share directory,
// and the guest unpacks it to GUEST_RUNTIME. Uncompressed: gzip took half a second on the host
// and gunzip about as much again under TCG, for 11 MiB that cross a local share either way.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { GUEST_SHARE_DIR } from '../../src/testing/index.js';
import { REPO_ROOT } from './server.js';

export const GUEST_RUNTIME = '/tmp/aionbd';
/** The CLI in the guest (the host's node binary, visible through the shared root). */
export const GUEST_AIONBD = `${process.execPath} ${GUEST_RUNTIME}/bin/aionbd.js`;
const TARBALL = 'aionbd-runtime.tar';

interface Lock {
  packages: Record<string, { dev?: boolean }>;
}

/** Writes the tar file into `shareDir`; returns the guest command that unpacks it. */
export function packRuntime(shareDir: string): string {
  const lock = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as Lock;
  const deps = Object.entries(lock.packages)
    .filter(([k, v]) => k !== '' && v.dev !== true)
    .map(([k]) => k);
  const files = ['package.json', 'bin', 'dist', 'build/Release/aionbd.node', ...deps].filter((f) => fs.existsSync(path.join(REPO_ROOT, f)));
  execFileSync('tar', ['-C', REPO_ROOT, '-cf', path.join(shareDir, TARBALL), ...files]);
  return `mkdir -p ${GUEST_RUNTIME} && tar -C ${GUEST_RUNTIME} -xf ${GUEST_SHARE_DIR}/${TARBALL}`;
}
