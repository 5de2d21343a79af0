// The CPU-bound neighbour of the "1 core busy" workloads: one process that keeps one core busy
// for as long as one run lasts, started after the target's server is up and stopped as soon as
// fio exits, so every target of a round shares the machine with the same load.
import { startChild } from './procs.mjs';
import { onPath } from './system.mjs';

/** Seconds the hog may outlive its run if the benchmark itself dies (stress-ng's own timer). */
const HOG_GRACE_SEC = 60;

/**
 * @typedef {object} Hog
 * @property {string} command
 * @property {() => Promise<void>} stop
 */

/** How the hog is run: stress-ng when installed, else a Node busy loop. */
export function hogCommand() {
  return onPath('stress-ng') ? 'stress-ng --cpu 1 --cpu-load 100' : `${process.execPath} -e "for(;;){}"`;
}

/**
 * @param {number} lifetimeSec  how long the run it accompanies may last
 * @param {string} dir
 * @returns {Hog}
 */
export function startHog(lifetimeSec, dir) {
  const child = onPath('stress-ng')
    ? startChild('stress-ng', ['--cpu', '1', '--cpu-load', '100', '--quiet', '--timeout', `${Math.ceil(lifetimeSec + HOG_GRACE_SEC)}s`], {
        cwd: dir,
      })
    : startChild(process.execPath, ['-e', 'for(;;){}'], { cwd: dir });
  return {
    command: hogCommand(),
    stop: async () => {
      await child.stop(5_000);
    },
  };
}
