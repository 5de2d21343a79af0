// Command-line options of `npm run bench` and the three presets (full, --quick, --smoke).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SMOKE_WORKLOADS, WORKLOADS, workloadById } from './workloads.mjs';

export const TARGET_IDS = Object.freeze(['aionbd', 'qemu-nbd', 'nbdkit', 'libaio']);
/** The extra target that --baseline adds. */
export const BASELINE_TARGET = 'aionbd-base';

export const USAGE = `Usage: npm run bench -- [options]

Runs each workload against aionbd, qemu-nbd, nbdkit (driven by fio's nbd engine over a unix
socket, one server at a time) and fio's own libaio on the same file, then writes
performance.md, performance.json and performance.png.

  --quick              one repetition, 2 s runs: about 2-3 minutes
  --smoke              a few seconds: 64M image, 1 s runs, two workloads (for the tests);
                       writes into a fresh temporary directory unless --out-dir is given
  --size S             image size (binary suffixes K M G; default 1G)
  --repeat N           repetitions per (workload, target); the median is reported (default 3)
  --runtime SEC        measured seconds per run (default 4)
  --ramp SEC           unmeasured warm-up seconds per run (default 1)
  --workloads A,B      workload ids (default: all; see --list)
  --targets A,B        of ${TARGET_IDS.join(', ')} (default: all)
  --baseline DIR       also run another aionbd checkout (built, in DIR) as target
                       aionbd-base, interleaved with the others: for before/after numbers
  --out-dir DIR        where the outputs go (default: docs/ of the repository)
  --image FILE         use (and overwrite) this file instead of a temporary image; it must be
                       on a file system that supports O_DIRECT (not tmpfs)
  --tmp-dir DIR        where the temporary image and sockets go (default /var/tmp)
  --no-install         never apt-get install missing tools (a missing server is skipped)
  --render FILE        only rebuild performance.md and performance.png from an earlier
                       performance.json (into --out-dir, default the JSON's directory)
  --list               print the workloads and exit
  -h, --help           this text`;

/**
 * @typedef {object} BenchOptions
 * @property {'full'|'quick'|'smoke'} mode
 * @property {number} size           bytes
 * @property {number} repeat
 * @property {number} runtime        seconds
 * @property {number} ramp           seconds
 * @property {import('./workloads.mjs').Workload[]} workloads
 * @property {string[]} targets
 * @property {string|null} baseline  another aionbd checkout, run as target aionbd-base
 * @property {string|null} outDir    null: the default for the mode
 * @property {string|null} image
 * @property {string} tmpDir
 * @property {boolean} install
 * @property {string|null} render  an earlier performance.json to render again
 * @property {boolean} list
 * @property {boolean} help
 * @property {string[]} argv         the arguments as given, for the report
 */

export class UsageError extends Error {}

/**
 * @param {string} s
 * @returns {number}
 */
export function parseSize(s) {
  const m = /^(\d+)([KMGT]?)i?B?$/i.exec(s.trim());
  if (m === null) throw new UsageError(`--size ${s}: expected a number with an optional K, M, G or T suffix`);
  const shift = { '': 0, K: 10, M: 20, G: 30, T: 40 }[(m[2] ?? '').toUpperCase()] ?? 0;
  const n = Number(m[1]) * 2 ** shift;
  if (!Number.isSafeInteger(n) || n < 16 << 20) throw new UsageError(`--size ${s}: at least 16M`);
  if (n % (1 << 20) !== 0) throw new UsageError(`--size ${s}: a whole number of MiB`);
  return n;
}

/**
 * @param {string} name
 * @param {string} s
 * @param {number} min
 * @param {number} max
 * @returns {number}
 */
function num(name, s, min, max) {
  const n = Number(s);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`${name} ${s}: expected a number in ${min}..${max}`);
  return n;
}

/**
 * @param {string[]} argv  process.argv.slice(2)
 * @returns {BenchOptions}
 */
export function parseOptions(argv) {
  /** @type {ReturnType<typeof parseArgs>} */
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        quick: { type: 'boolean' }, smoke: { type: 'boolean' },
        size: { type: 'string' }, repeat: { type: 'string' }, runtime: { type: 'string' }, ramp: { type: 'string' },
        workloads: { type: 'string' }, targets: { type: 'string' }, baseline: { type: 'string' },
        'out-dir': { type: 'string' }, image: { type: 'string' }, 'tmp-dir': { type: 'string' },
        'no-install': { type: 'boolean' }, render: { type: 'string' }, list: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const v = /** @type {Record<string, string|boolean|undefined>} */ (parsed.values);
  const str = (/** @type {string} */ k) => { const x = v[k]; return typeof x === 'string' ? x : undefined; };
  if (v['quick'] === true && v['smoke'] === true) throw new UsageError('--quick and --smoke exclude each other');
  /** @type {'full'|'quick'|'smoke'} */
  const mode = v['smoke'] === true ? 'smoke' : v['quick'] === true ? 'quick' : 'full';
  const preset = {
    full: { size: '1G', repeat: 3, runtime: 4, ramp: 1, workloads: WORKLOADS.map((w) => w.id) },
    quick: { size: '1G', repeat: 1, runtime: 2, ramp: 0.5, workloads: WORKLOADS.map((w) => w.id) },
    smoke: { size: '64M', repeat: 1, runtime: 1, ramp: 0, workloads: [...SMOKE_WORKLOADS] },
  }[mode];

  const wl = str('workloads');
  const tg = str('targets');
  const targets = tg === undefined ? [...TARGET_IDS] : tg.split(',').map((t) => t.trim()).filter((t) => t !== '');
  for (const t of targets) if (!TARGET_IDS.includes(t)) throw new UsageError(`--targets: unknown target "${t}" (known: ${TARGET_IDS.join(', ')})`);
  if (targets.length === 0) throw new UsageError('--targets: name at least one target');
  const baseline = str('baseline') ?? null;
  if (baseline !== null) {
    if (!fs.existsSync(path.join(baseline, 'bin', 'aionbd.js'))) throw new UsageError(`--baseline ${baseline}: no bin/aionbd.js there`);
    // Right after aionbd, so the two alternate run by run.
    const at = targets.indexOf('aionbd');
    targets.splice(at < 0 ? 0 : at + 1, 0, BASELINE_TARGET);
  }
  let workloads;
  try {
    workloads = (wl === undefined ? preset.workloads : wl.split(',').map((w) => w.trim()).filter((w) => w !== '')).map(workloadById);
  } catch (err) {
    throw new UsageError(`--workloads: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (workloads.length === 0) throw new UsageError('--workloads: name at least one workload');

  const runtime = num('--runtime', str('runtime') ?? String(preset.runtime), 0.5, 600);
  return {
    mode,
    size: parseSize(str('size') ?? preset.size),
    repeat: Math.floor(num('--repeat', str('repeat') ?? String(preset.repeat), 1, 50)),
    runtime,
    ramp: num('--ramp', str('ramp') ?? String(preset.ramp), 0, 600),
    workloads,
    targets,
    baseline: baseline === null ? null : path.resolve(baseline),
    outDir: str('out-dir') ?? null,
    image: str('image') ?? null,
    tmpDir: str('tmp-dir') ?? '/var/tmp',
    install: v['no-install'] !== true,
    render: str('render') ?? null,
    list: v['list'] === true,
    help: v['help'] === true,
    argv,
  };
}
