import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Native addon, real fds and child processes: one fork per file keeps them apart.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    include: ['test/**/*.test.ts'],
    // Starts nothing: names where the run's shared Ceph cluster goes, and stops it at the end.
    globalSetup: ['test/setup/ceph.ts'],
    // Kernel VM tests take the whole machine; run files one at a time so timings stay bounded.
    fileParallelism: false,
  },
});
