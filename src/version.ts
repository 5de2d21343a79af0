// The package's version, read once from package.json (one place for `--version` and aionbd_get_version).
import fs from 'node:fs';

let cached: string | null = null;

/** package.json's version, or 0.0.0 if it has none. */
export function packageVersion(): string {
  if (cached === null) {
    const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    cached = typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  }
  return cached;
}
