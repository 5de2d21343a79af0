// vitest globalSetup: one test Ceph cluster per test run, shared by the files that need one.
// Nothing starts here: the first file that asks for the cluster starts it (test/helpers/ceph.ts)
// in the directory named here, later files attach to it, and the teardown stops it by pid.
// Runs that use no RBD test pay nothing.
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { stopCephCluster } from '../../src/testing/ceph.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Where the run's shared Ceph cluster lives (once a test file started it). */
    cephDir: string;
    /** The vitest process: the cluster's watchdog stops the daemons once it is gone. */
    cephOwner: number;
  }
}

export default function setup(project: TestProject): () => Promise<void> {
  const dir = path.join(os.tmpdir(), `aionbd-ceph-run-${process.pid}`);
  project.provide('cephDir', dir);
  project.provide('cephOwner', process.pid);
  return () => stopCephCluster(dir);
}
