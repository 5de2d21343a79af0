// The targets: the rows of the report. Each NBD server is started on the round's image with a
// unix socket and an export named "bench", and driven by the same fio nbd client; libaio and
// io_uring have no server (fio opens the file itself, O_DIRECT, with that engine).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { delay, startChild } from './procs.mjs';
import { REPO_ROOT } from './system.mjs';

export const EXPORT_NAME = 'bench';
const READY_TIMEOUT_MS = 20_000;
/**
 * qemu-nbd 7.2 keeps at most this many requests of one client in flight (MAX_NBD_REQUESTS in
 * QEMU's nbd/server.c): deeper queues wait in the socket.
 */
export const QEMU_NBD_MAX_REQUESTS = 16;

/**
 * @typedef {'aionbd'|'aionbd-base'|'aionbd-uring'|'aionbd-null'|'qemu-nbd'|'nbdkit-null'|'nbdkit-file'} ServerKind
 */

/**
 * @typedef {object} Target
 * @property {string} id
 * @property {string} label         for the tables and the chart
 * @property {string} description   what the row means and how it is run, for the report
 * @property {ServerKind|null} server   null: fio on the file, with `engine`
 * @property {'libaio'|'io_uring'} [engine]  fio's engine on the file, for the rows without a server
 * @property {string|null} tool     the executable it needs besides fio and node
 * @property {(w: import('./workloads.mjs').Workload) => { iodepth: number, numjobs: number } | null} shape
 *   the fio job shape for a workload, or null when the row does not apply to it
 */

/** @type {Target['shape']} */
const same = (w) => ({ iodepth: w.iodepth, numjobs: w.numjobs });

/** @type {Readonly<Record<string, Target>>} */
export const TARGETS = Object.freeze({
  aionbd: {
    id: 'aionbd',
    label: 'aionbd',
    server: 'aionbd',
    tool: null,
    shape: same,
    description: 'the server under test: `aionbd serve --aio IMAGE` (AIO bdev, O_DIRECT, default settings) on a unix socket',
  },
  'aionbd-uring': {
    id: 'aionbd-uring',
    label: 'aionbd uring',
    server: 'aionbd-uring',
    tool: null,
    shape: same,
    description:
      "the same server with the file behind a uring bdev (SPDK's bdev_uring: io_uring instead of Linux AIO, O_DIRECT): " +
      '`aionbd serve --uring IMAGE`; the performance goals are judged on it as well as on the AIO bdev',
  },
  'aionbd-base': {
    id: 'aionbd-base',
    label: 'aionbd (baseline)',
    server: 'aionbd-base',
    tool: null,
    shape: same,
    description: 'another aionbd checkout (--baseline DIR), run the same way as aionbd: for before/after ratios',
  },
  libaio: {
    id: 'libaio',
    label: 'fio libaio',
    server: null,
    engine: 'libaio',
    tool: null,
    shape: same,
    description:
      'the disk: fio `--ioengine=libaio --direct=1` on the image itself, no NBD and no server. ' +
      'What the device gives one process with the same queue depth; the 0.8x and 0.9x targets are ratios to it',
  },
  io_uring: {
    id: 'io_uring',
    label: 'fio io_uring',
    server: null,
    engine: 'io_uring',
    tool: null,
    shape: same,
    description:
      'the disk through io_uring: fio `--ioengine=io_uring --direct=1` on the image itself, no NBD and no server; the ceiling ' +
      'of the uring bdev, as libaio is of the AIO bdev',
  },
  'qemu-nbd': {
    id: 'qemu-nbd',
    label: 'qemu-nbd',
    server: 'qemu-nbd',
    tool: 'qemu-nbd',
    shape: same,
    description:
      `the reference server: \`qemu-nbd --cache=none --aio=native\` (O_DIRECT, Linux AIO), the same fio job as aionbd. ` +
      `qemu-nbd keeps at most ${QEMU_NBD_MAX_REQUESTS} requests of one client in flight (MAX_NBD_REQUESTS), so at QD32 part of ` +
      'its result is that cap, not its data path; the 1.2x goals are ratios to this row',
  },
  'qemu-nbd-qd16': {
    id: 'qemu-nbd-qd16',
    label: `qemu-nbd QD${QEMU_NBD_MAX_REQUESTS} conns`,
    server: 'qemu-nbd',
    tool: 'qemu-nbd',
    // The same total depth spread over connections of at most the cap, so the cap holds nothing back.
    shape: (w) =>
      w.numjobs === 1 && w.iodepth > QEMU_NBD_MAX_REQUESTS && w.iodepth % QEMU_NBD_MAX_REQUESTS === 0
        ? { iodepth: QEMU_NBD_MAX_REQUESTS, numjobs: w.iodepth / QEMU_NBD_MAX_REQUESTS }
        : null,
    description:
      `the control for qemu-nbd's cap: the same qemu-nbd, the same total queue depth over connections of QD${QEMU_NBD_MAX_REQUESTS} ` +
      `(two for the QD32 rows), so no request waits for the cap; only on single-connection workloads deeper than ${QEMU_NBD_MAX_REQUESTS}`,
  },
  'nbdkit-null': {
    id: 'nbdkit-null',
    label: 'nbdkit null',
    server: 'nbdkit-null',
    tool: 'nbdkit',
    shape: same,
    description:
      'the client and socket ceiling: `nbdkit null` (no disk: reads return zeros, writes are dropped), the same fio nbd client ' +
      'over the same kind of socket. A server cannot beat it; the gap between it and libaio-bound rows is the server or the disk',
  },
  'aionbd-null': {
    id: 'aionbd-null',
    label: 'aionbd null',
    server: 'aionbd-null',
    tool: null,
    shape: same,
    description:
      "aionbd's own ceiling: a null bdev (SPDK's bdev_null: reads return zeros, writes are dropped) exported by " +
      '`aionbd serve`, beside nbdkit null; the gap between it and aionbd is the AIO path and the disk. Not run unless named in --targets',
  },
  'nbdkit-file': {
    id: 'nbdkit-file',
    label: 'nbdkit file',
    server: 'nbdkit-file',
    tool: 'nbdkit',
    shape: same,
    description:
      '`nbdkit file IMAGE cache=none`: nbdkit 1.32 has no O_DIRECT, so this is buffered I/O followed by fadvise(DONTNEED) ' +
      'of what it touched; not an O_DIRECT-to-O_DIRECT comparison (its QD1 writes and sequential reads get the page cache)',
  },
});

/** The default rows, in the order the tables show them. */
export const DEFAULT_TARGETS = Object.freeze([
  'aionbd',
  'aionbd-uring',
  'libaio',
  'io_uring',
  'qemu-nbd',
  'qemu-nbd-qd16',
  'nbdkit-null',
  'nbdkit-file',
]);

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
 * @param {ServerKind} kind
 * @param {string} image
 * @param {number} size    bytes (the null servers have no file to take it from)
 * @param {string} sock
 * @param {string|null} baseline  the checkout aionbd-base runs
 * @returns {{cmd: string, args: string[]}}
 */
function serverCommand(kind, image, size, sock, baseline) {
  switch (kind) {
    case 'aionbd':
    case 'aionbd-base':
    case 'aionbd-uring':
      return {
        cmd: process.execPath,
        args: [
          path.join(kind === 'aionbd-base' ? (baseline ?? '') : REPO_ROOT, 'bin', 'aionbd.js'),
          'serve',
          '--listen',
          `unix:${sock}`,
          kind === 'aionbd-uring' ? '--uring' : '--aio',
          `${image},name=${EXPORT_NAME}`,
          '--log-level',
          'warn',
        ],
      };
    case 'aionbd-null': {
      // No serve flag makes a null bdev: a config file does, as save_config writes one.
      const config = path.join(path.dirname(sock), 'aionbd-null.json');
      fs.writeFileSync(
        config,
        JSON.stringify({
          subsystems: [
            {
              subsystem: 'bdev',
              config: [{ method: 'bdev_null_create', params: { name: EXPORT_NAME, num_blocks: Math.floor(size / 512), block_size: 512 } }],
            },
            { subsystem: 'nbd', config: [{ method: 'nbd_export_add', params: { bdev_name: EXPORT_NAME } }] },
          ],
        }),
      );
      return {
        cmd: process.execPath,
        args: [
          path.join(REPO_ROOT, 'bin', 'aionbd.js'),
          'serve',
          '--listen',
          `unix:${sock}`,
          '--no-rpc',
          '--config',
          config,
          '--log-level',
          'warn',
        ],
      };
    }
    case 'qemu-nbd':
      // --persistent: stay up between fio's connections; --shared: the multi-connection jobs.
      return {
        cmd: 'qemu-nbd',
        args: ['-f', 'raw', '--cache=none', '--aio=native', '--shared=8', '--persistent', '-k', sock, '-x', EXPORT_NAME, image],
      };
    case 'nbdkit-null':
      return { cmd: 'nbdkit', args: ['-f', '--exit-with-parent', '-U', sock, '-e', EXPORT_NAME, 'null', `size=${size}`] };
    case 'nbdkit-file':
      return { cmd: 'nbdkit', args: ['-f', '--exit-with-parent', '-U', sock, '-e', EXPORT_NAME, 'file', image, 'cache=none'] };
    default:
      throw new Error(`unknown server kind ${String(kind)}`);
  }
}

/**
 * Starts the server of a target and resolves once it accepts connections.
 * @param {Target} target
 * @param {{ image: string, size: number, dir: string, baseline: string|null }} at
 * @returns {Promise<RunningServer>}
 */
export async function startServer(target, at) {
  if (target.server === null) throw new Error(`${target.id} has no server`);
  const sock = path.join(at.dir, `${target.server}.sock`);
  const { cmd, args } = serverCommand(target.server, at.image, at.size, sock, at.baseline);
  fs.rmSync(sock, { force: true });
  const child = startChild(cmd, args, { cwd: at.dir });
  const isAionbd = target.server.startsWith('aionbd');
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const ready = async () => {
    for (;;) {
      if (!child.running()) return false;
      // aionbd says when it is ready; the others are ready once their socket accepts.
      if (isAionbd ? /^aionbd: exporting "/m.test(child.stdout()) : await canConnect(sock)) return true;
      if (Date.now() > deadline) return false;
      await delay(20);
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
    stop: async () => {
      await child.stop();
      fs.rmSync(sock, { force: true });
    },
  };
}

/**
 * @param {string} sock
 * @returns {Promise<boolean>}
 */
export function canConnect(sock) {
  if (!fs.existsSync(sock)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const s = net.connect(sock);
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 1_000);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}
