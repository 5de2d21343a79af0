// The open-file limit: an embedded server reads RLIMIT_NOFILE and sizes its default connection
// limit from it without touching it; asked to (as `aionbd serve` does), it raises the soft limit
// to the hard one with setrlimit. The soft limit of this test process is lowered with prlimit
// first (Node raised it at start-up), and put back afterwards.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { MAX_CONNECTIONS_CAP, maxConnectionsFor, RESERVED_FDS } from '../../src/nbd/admission.js';
import { NbdServer } from '../../src/nbd/server.js';

function nofile(): { soft: number; hard: number } {
  const m = /^Max open files\s+(\d+)\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  if (m === null) throw new Error('no "Max open files" line in /proc/self/limits');
  return { soft: Number(m[1]), hard: Number(m[2]) };
}

const setSoft = (soft: number, hard: number): void => {
  execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${soft}:${hard}`]);
};

describe('open-file limit', () => {
  const start = nofile();
  const lowered = Math.min(512, start.hard);
  beforeAll(() => {
    setSoft(lowered, start.hard);
  });
  afterAll(() => {
    setSoft(start.soft, start.hard);
  });

  it('sizes the default connection limit as (soft limit - RESERVED_FDS) / 2, within bounds', () => {
    expect(maxConnectionsFor(20_000)).toBe((20_000 - RESERVED_FDS) / 2);
    expect(maxConnectionsFor(1024)).toBe(384);
    expect(maxConnectionsFor(100)).toBe(1);
    expect(maxConnectionsFor(-1)).toBe(MAX_CONNECTIONS_CAP); // unlimited
    expect(maxConnectionsFor(10 ** 9)).toBe(MAX_CONNECTIONS_CAP);
  });

  it('an embedded server leaves the process limit alone unless asked; asked, it raises the soft limit to the hard one', () => {
    const quiet = new NbdServer({ log: silentLogger() });
    expect(nofile().soft).toBe(lowered);
    expect(quiet.limits).toMatchObject({ openFiles: lowered, openFilesBefore: lowered, openFilesHard: start.hard, raiseError: 0 });
    expect(quiet.limits.maxConnections).toBe(maxConnectionsFor(lowered));

    const explicit = new NbdServer({ log: silentLogger(), maxConnections: 7 });
    expect(explicit.limits.maxConnections).toBe(7);

    const raising = new NbdServer({ log: silentLogger(), raiseFileLimit: true });
    expect(nofile().soft).toBe(start.hard);
    expect(raising.limits).toMatchObject({ openFiles: start.hard, openFilesBefore: lowered, openFilesHard: start.hard, raiseError: 0 });
    expect(raising.limits.maxConnections).toBe(maxConnectionsFor(start.hard));
  });
});
