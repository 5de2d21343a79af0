// Command-line options of `npm run bench` and the three presets (full, --quick, --smoke).
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FILL_IDS } from './image.mjs';
import { estimate, humanDuration } from './plan.mjs';
import { DEFAULT_TARGETS, TARGETS } from './targets.mjs';
import { DEFAULT_WORKLOADS, SMOKE_WORKLOADS, workloadById } from './workloads.mjs';

/** The extra target that --baseline adds. */
export const BASELINE_TARGET = 'aionbd-base';
/** Every target --targets accepts (the baseline comes with --baseline). */
export const TARGET_IDS = Object.freeze(Object.keys(TARGETS).filter((t) => t !== BASELINE_TARGET));

const GIB = 2 ** 30;
/** The presets. A full run is what docs/performance.md is regenerated from. */
const PRESETS = Object.freeze({
  full: { size: '1G', rounds: 5, runtime: 8, ramp: 1, fills: [...FILL_IDS], workloads: [...DEFAULT_WORKLOADS] },
  quick: { size: '1G', rounds: 3, runtime: 3, ramp: 0.5, fills: ['direct'], workloads: [...DEFAULT_WORKLOADS] },
  smoke: { size: '64M', rounds: 2, runtime: 0.5, ramp: 0, fills: [...FILL_IDS], workloads: [...SMOKE_WORKLOADS] },
});

/** @param {'full'|'quick'} mode */
function presetDuration(mode) {
  const p = PRESETS[mode];
  return humanDuration(estimate({ ...p, size: GIB, workloads: p.workloads.map(workloadById), targets: [...DEFAULT_TARGETS] }).seconds);
}

export const USAGE =
  `Usage: npm run bench -- [options]

Measures aionbd (with the AIO bdev, and with the uring bdev) against the disk (fio libaio and fio
io_uring on the file), qemu-nbd, a qemu-nbd control without its 16-request cap, nbdkit's null
plugin (the client and socket ceiling) and nbdkit's file plugin, in paired rounds: every round writes a fresh image for each workload and runs every
target on it in a rotated order; ratios are taken within a round and reported as the median
with its min-max over the rounds. Writes performance.md, performance.json and performance.png.

A full run (${PRESETS.full.rounds} rounds x ${PRESETS.full.fills.length} image kinds x ${PRESETS.full.workloads.length} workloads x 7-8 targets, ` +
  `${PRESETS.full.runtime}+${PRESETS.full.ramp} s a run) takes about ${presetDuration('full')}.
Run it on a quiet machine: other work skews the servers more than fio libaio.

  --quick              ${PRESETS.quick.rounds} rounds of ${PRESETS.quick.runtime} s, O_DIRECT-filled images only: about ${presetDuration('quick')}
  --smoke              under a minute: 64M images, 2 rounds of 0.5 s, one workload (for the tests);
                       writes into a fresh temporary directory unless --out-dir is given
  --rounds N           paired rounds (default ${PRESETS.full.rounds}; a verdict on the performance goals
                       needs at least 5 rounds of at least 8 s)
  --runtime SEC        measured seconds per run (default ${PRESETS.full.runtime})
  --ramp SEC           unmeasured warm-up seconds per run (default ${PRESETS.full.ramp})
  --size S             image size (binary suffixes K M G; default 1G)
  --fills A,B          how each fresh image is written: ${FILL_IDS.join(', ')} (default: both)
                         direct: O_DIRECT writes; cached: through the page cache, pages dropped after
  --workloads A,B      workload ids (default: the ${DEFAULT_WORKLOADS.length} the targets are stated on and the AIO guide's; see --list)
  --targets A,B        of ${TARGET_IDS.join(', ')} (default: ${DEFAULT_TARGETS.join(',')})
  --baseline DIR       also run another aionbd checkout (built, in DIR) as target ${BASELINE_TARGET}
                       in every round: for before/after ratios
  --out-dir DIR        where the outputs go (default: docs/ of the repository, and then the
                       README's Benchmarks summary is regenerated too)
  --tmp-dir DIR        where the images and sockets go (default /var/tmp); it must be on a file
                       system with O_DIRECT (not tmpfs)
  --no-install         never apt-get install missing tools (a missing server is skipped;
                       without stress-ng the busy core is a Node busy loop)
  --rbd                only the RBD section: aionbd's RBD export against qemu-nbd rbd: and
                       rbd bench on a one-node test cluster, 4k randread/randwrite QD32, paired
                       rounds (--rounds, --runtime, --ramp, --size apply); writes
                       performance-rbd.md/.json. Needs ceph-mon ceph-osd ceph-common
                       qemu-block-extra
  --scale-connections N
                       only the "scale: connections" section: N idle connections to one server
                       (KiB of RSS and fds per connection, RSS 10 s after they close; with
                       --baseline, the other checkout too), printed as cost per unit
  --render FILE        only rebuild performance.md, performance.png (and the README summary,
                       when the output is docs/) from an earlier performance.json
  --scale N            instead of the rounds: create N AIO bdevs + exports over JSON-RPC on one
                       server, list and delete them, and print the cost per bdev (with
                       --baseline, that checkout too)
  --list               print the workloads and exit
  -h, --help           this text`;

/**
 * @typedef {object} BenchOptions
 * @property {'full'|'quick'|'smoke'} mode
 * @property {number} size           bytes
 * @property {number} rounds
 * @property {number} runtime        seconds
 * @property {number} ramp           seconds
 * @property {string[]} fills        ids of FILLS
 * @property {import('./workloads.mjs').Workload[]} workloads
 * @property {string[]} targets
 * @property {string|null} baseline  another aionbd checkout, run as target aionbd-base
 * @property {string|null} outDir    null: the default for the mode
 * @property {string} tmpDir
 * @property {boolean} install
 * @property {string|null} render  an earlier performance.json to render again
 * @property {number|null} scaleConnections  run only the connection scale section, with this many
 * @property {number|null} scale    --scale N: bdevs for the scale section (null: not asked)
 * @property {boolean} list
 * @property {boolean} rbd           run the RBD section (scripts/bench/rbd.mjs) instead
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
 * @param {string} name
 * @param {string|undefined} given
 * @param {readonly string[]} dflt
 * @returns {string[]}
 */
function list(name, given, dflt) {
  const xs =
    given === undefined
      ? [...dflt]
      : given
          .split(',')
          .map((x) => x.trim())
          .filter((x) => x !== '');
  if (xs.length === 0) throw new UsageError(`${name}: name at least one`);
  return [...new Set(xs)];
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
        quick: { type: 'boolean' },
        smoke: { type: 'boolean' },
        size: { type: 'string' },
        rounds: { type: 'string' },
        runtime: { type: 'string' },
        ramp: { type: 'string' },
        fills: { type: 'string' },
        workloads: { type: 'string' },
        targets: { type: 'string' },
        baseline: { type: 'string' },
        'out-dir': { type: 'string' },
        'tmp-dir': { type: 'string' },
        'no-install': { type: 'boolean' },
        rbd: { type: 'boolean' },
        render: { type: 'string' },
        'scale-connections': { type: 'string' },
        list: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        scale: { type: 'string' },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const v = /** @type {Record<string, string|boolean|undefined>} */ (parsed.values);
  const str = (/** @type {string} */ k) => {
    const x = v[k];
    return typeof x === 'string' ? x : undefined;
  };
  if (v['quick'] === true && v['smoke'] === true) throw new UsageError('--quick and --smoke exclude each other');
  /** @type {'full'|'quick'|'smoke'} */
  const mode = v['smoke'] === true ? 'smoke' : v['quick'] === true ? 'quick' : 'full';
  const preset = PRESETS[mode];

  const targets = list('--targets', str('targets'), DEFAULT_TARGETS);
  for (const t of targets)
    if (!TARGET_IDS.includes(t)) throw new UsageError(`--targets: unknown target "${t}" (known: ${TARGET_IDS.join(', ')})`);
  const baseline = str('baseline') ?? null;
  if (baseline !== null) {
    if (!fs.existsSync(path.join(baseline, 'bin', 'aionbd.js'))) throw new UsageError(`--baseline ${baseline}: no bin/aionbd.js there`);
    // Right after aionbd, so the two run next to each other in every rotation.
    const at = targets.indexOf('aionbd');
    targets.splice(at < 0 ? 0 : at + 1, 0, BASELINE_TARGET);
  }
  const fills = list('--fills', str('fills'), preset.fills);
  for (const f of fills)
    if (!FILL_IDS.includes(f)) throw new UsageError(`--fills: unknown image kind "${f}" (known: ${FILL_IDS.join(', ')})`);
  let workloads;
  try {
    workloads = list('--workloads', str('workloads'), preset.workloads).map(workloadById);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`--workloads: ${err instanceof Error ? err.message : String(err)}`);
  }

  return {
    mode,
    size: parseSize(str('size') ?? preset.size),
    rounds: Math.floor(num('--rounds', str('rounds') ?? String(preset.rounds), 1, 100)),
    runtime: num('--runtime', str('runtime') ?? String(preset.runtime), 0.5, 600),
    ramp: num('--ramp', str('ramp') ?? String(preset.ramp), 0, 600),
    fills,
    workloads,
    targets,
    baseline: baseline === null ? null : path.resolve(baseline),
    outDir: str('out-dir') ?? null,
    tmpDir: str('tmp-dir') ?? '/var/tmp',
    install: v['no-install'] !== true,
    render: str('render') ?? null,
    scaleConnections:
      str('scale-connections') === undefined ? null : Math.floor(num('--scale-connections', str('scale-connections') ?? '', 1, 100_000)),
    scale: str('scale') === undefined ? null : Math.floor(num('--scale', str('scale') ?? '', 1, 100_000)),
    list: v['list'] === true,
    rbd: v['rbd'] === true,
    help: v['help'] === true,
    argv,
  };
}
