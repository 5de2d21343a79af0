// The test Ceph cluster (src/testing/ceph.ts), shared by every file of a vitest run: the first
// file to ask starts it where test/setup/ceph.ts says, the next ones attach to it. Images get
// names unique to the file, so files never see each other's.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { inject } from 'vitest';
import { attachCephCluster, missingCephTools, startCephCluster, type CephCluster } from '../../src/testing/ceph.js';
import { native } from '../../src/native.js';
import { isCI } from './tools.js';

/**
 * Whether the Ceph daemons and tools are installed and the addon has RBD support. Missing: with
 * CI=true it throws (npm test installs them), otherwise it prints why and returns false.
 */
export function haveCeph(): boolean {
  const missing = missingCephTools();
  const rbd = native().rbd;
  const why = missing.length > 0 ? `Ceph is not installed (apt-get install ${missing.join(' ')})` : !rbd.available ? rbd.reason : null;
  if (why === null) return true;
  if (isCI()) throw new Error(`CI=true and ${why}`);
  process.stderr.write(`skipping tests: ${why}\n`);
  return false;
}

/** The run's cluster, started on first use (about 10 s), bounded by 60 s. */
export async function sharedCeph(): Promise<CephCluster> {
  const dir = inject('cephDir');
  const owner = inject('cephOwner');
  const c = await attachCephCluster(dir);
  if (c !== null) return c;
  fs.rmSync(dir, { recursive: true, force: true });
  return startCephCluster({ dir, ownerPid: owner, timeoutMs: 60_000 });
}

/** An image name no other file uses. */
export function imageName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}
