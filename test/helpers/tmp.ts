import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A fresh temporary directory on a disk file system (O_DIRECT works there, unlike tmpfs). */
export function tmpDir(prefix = 'aionbd-test-'): string {
  const base = process.env['AIONBD_TEST_TMP'] ?? (fs.existsSync('/var/tmp') ? '/var/tmp' : os.tmpdir());
  return fs.mkdtempSync(path.join(base, prefix));
}

export function rmrf(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}
