// The four targets. Each NBD server is started on the same image with a unix socket and an
// export named "bench"; libaio has no server (fio opens the file itself, O_DIRECT).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { delay, startChild } from './procs.mjs';
import { REPO_ROOT } from './system.mjs';

export const EXPORT_NAME = 'bench';
const READY_TIMEOUT_MS = 20_000;

/**
 * @typedef {object} Target
 * @property {string} id
 * @property {string} label        for the table and the chart
 * @property {string} description  how it is run, for the report
 * @property {boolean} server      false for libaio
 */

/** @type {Readonly<Record<string, Target>>} */
export const TARGETS = Object.freeze({
  aionbd: { id: 'aionbd', label: 'aionbd', server: true,
    description: 'aionbd serve --aio IMAGE (AIO bdev, O_DIRECT, default queue depth) on a unix socket' },
  'qemu-nbd': { id: 'qemu-nbd', label: 'qemu-nbd', server: true,
    description: 'qemu-nbd -f raw --cache=none --aio=native --shared=8 --persistent (O_DIRECT, Linux AIO)' },
  nbdkit: { id: 'nbdkit', label: 'nbdkit', server: true,
    description: 'nbdkit file IMAGE cache=none (nbdkit 1.32 has no O_DIRECT: buffered I/O, then fadvise(DONTNEED) to drop what it read or wrote)' },
  'aionbd-base': { id: 'aionbd-base', label: 'aionbd (baseline)', server: true,
    description: 'another aionbd checkout (--baseline DIR), run the same way as aionbd' },
  libaio: { id: 'libaio', label: 'fio libaio', server: false,
    description: 'fio --ioengine=libaio --direct=1 on the image itself: the ceiling, no NBD and no server' },
});

/**
 * @typedef {object} RunningServer
 * @property {number} pid
 * @property {string} uri          the NBD URI fio connects to
 * @property {string} command
 * @property {() => boolean} running
 * @property {() => string} stderr
 * @property {() => Promise<void>} stop
 */

/**
 * @param {string} id
 * @param {string} image
 * @param {string} dir   where the socket goes
 * @param {string|null} [baseline]  the checkout target aionbd-base runs
 * @returns {{cmd: string, args: string[]}}
 */
function serverCommand(id, image, dir, baseline) {
  const sock = path.join(dir, `${id}.sock`);
  switch (id) {
    case 'aionbd':
    case 'aionbd-base':
      return { cmd: process.execPath, args: [path.join(id === 'aionbd' ? REPO_ROOT : baseline ?? '', 'bin', 'aionbd.js'), 'serve', '--listen', `unix:${sock}`,
        '--aio', `${image},name=${EXPORT_NAME}`, '--log-level', 'warn'] };
    case 'qemu-nbd':
      // --persistent: stay up after a client leaves; --shared: the 4-connection workloads.
      return { cmd: 'qemu-nbd', args: ['-f', 'raw', '--cache=none', '--aio=native', '--shared=8', '--persistent',
        '-k', sock, '-x', EXPORT_NAME, image] };
    case 'nbdkit':
      return { cmd: 'nbdkit', args: ['-f', '--exit-with-parent', '-U', sock, '-e', EXPORT_NAME, 'file', image, 'cache=none'] };
    default:
      throw new Error(`${id} is not a server`);
  }
}

/**
 * Starts the server of target `id` and resolves once it accepts connections.
 * @param {string} id
 * @param {string} image
 * @param {string} dir
 * @param {string|null} [baseline]
 * @returns {Promise<RunningServer>}
 */
export async function startServer(id, image, dir, baseline = null) {
  const { cmd, args } = serverCommand(id, image, dir, baseline);
  const sock = path.join(dir, `${id}.sock`);
  fs.rmSync(sock, { force: true });
  const child = startChild(cmd, args, { cwd: dir });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const ready = async () => {
    for (;;) {
      if (!child.running()) return false;
      // aionbd says when it is ready; the others are ready once their socket accepts.
      if (id.startsWith('aionbd') ? /^aionbd: exporting "/m.test(child.stdout()) : await canConnect(sock)) return true;
      if (Date.now() > deadline) return false;
      await delay(50);
    }
  };
  if (!(await ready())) {
    const why = child.running() ? `was not ready within ${READY_TIMEOUT_MS} ms` : 'exited';
    await child.stop();
    throw new Error(`${child.command} ${why}\n${child.stderr().slice(-2000)}`);
  }
  return {
    pid: child.pid,
    uri: `nbd+unix:///${EXPORT_NAME}?socket=${sock}`,
    command: child.command,
    running: child.running,
    stderr: child.stderr,
    stop: () => child.stop(),
  };
}

/**
 * @param {string} sock
 * @returns {Promise<boolean>}
 */
function canConnect(sock) {
  if (!fs.existsSync(sock)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const s = net.connect(sock);
    const timer = setTimeout(() => { s.destroy(); resolve(false); }, 1_000);
    s.once('connect', () => { clearTimeout(timer); s.destroy(); resolve(true); });
    s.once('error', () => { clearTimeout(timer); resolve(false); });
  });
}
