// Kernel attach, the parts this machine can check without an nbd driver: device names, the
// socketpair, what a missing driver looks like from the library, the RPC methods and the CLI.
// The attach itself runs against a real kernel in test/kernel/attach.test.ts.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paramsFromArgs } from '../../src/cli/rpc_args.js';
import { NbdDiskNotFoundError, NoNbdDriverError, Server, silentLogger, UsageError } from '../../src/index.js';
import { native } from '../../src/native.js';
import { nbdDevicePath, parseNbdDevice } from '../../src/nbd/kernel/devices.js';
import { kernelInterface } from '../../src/nbd/kernel/link.js';
import { run } from '../helpers/run.js';
import { BIN, requireBuilt } from '../helpers/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';

const noDriver = !fs.existsSync('/sys/module/nbd') && !fs.existsSync('/dev/nbd0');

describe('kernel attach without a kernel', () => {
  let dir: string;
  beforeAll(() => {
    dir = tmpDir();
  });
  afterAll(() => {
    rmrf(dir);
  });

  it('takes /dev/nbdN and nothing else', () => {
    expect(parseNbdDevice('/dev/nbd0')).toBe(0);
    expect(parseNbdDevice('/dev/nbd15')).toBe(15);
    expect(nbdDevicePath(7)).toBe('/dev/nbd7');
    for (const bad of ['/dev/sda', 'nbd0', '/dev/nbd', '/dev/nbd0p1', '/dev/nbd-1', '/dev/../dev/nbd0']) {
      expect(() => parseNbdDevice(bad)).toThrow(UsageError);
    }
  });

  it('makes a connected, close-on-exec socketpair', async () => {
    const [a, b] = native().nbd.socketpair();
    const sa = new net.Socket({ fd: a, readable: true, writable: true });
    const sb = new net.Socket({ fd: b, readable: true, writable: true });
    try {
      const got = once(sb, 'data');
      sa.write('ping');
      expect(String((await got)[0])).toBe('ping');
      // FD_CLOEXEC: a child process (nbd-client, mkfs) must not inherit the kernel's socket.
      const flags = /^flags:\s+([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${a}`, 'utf8'))?.[1] ?? '0';
      expect(parseInt(flags, 8) & 0o2000000).not.toBe(0);
    } finally {
      sa.destroy();
      sb.destroy();
    }
  });

  it.runIf(noDriver)('without the nbd driver: the netlink family is missing, and the error names modprobe', async () => {
    await expect(native().nbd.family()).rejects.toMatchObject({ errno: -2, syscall: 'netlink CTRL_CMD_GETFAMILY nbd' });
    await expect(kernelInterface()).rejects.toBeInstanceOf(NoNbdDriverError);
    await expect(kernelInterface(false)).rejects.toThrow('the kernel has no nbd driver: run "modprobe nbd" as root');
  });

  it.runIf(noDriver)('Server: startDisk fails with one clear error, getDisks and stopDisk know nothing attached', async () => {
    const s = new Server({ log: silentLogger() });
    try {
      await s.createMalloc({ name: 'm0', blockSize: 512, numBlocks: 2048 });
      await expect(s.startDisk('m0')).rejects.toBeInstanceOf(NoNbdDriverError);
      await expect(s.startDisk('m0', { device: '/dev/sda' })).rejects.toBeInstanceOf(UsageError);
      await expect(s.startDisk('m0', { connections: 17 })).rejects.toThrow('connections must be a whole number from 1 to 16');
      expect(s.getDisks()).toEqual([]);
      await expect(s.stopDisk('/dev/nbd0')).rejects.toBeInstanceOf(NbdDiskNotFoundError);
      expect(await s.call('nbd_get_disks')).toEqual([]);
      await expect(s.call('nbd_start_disk', { bdev_name: 'm0', block_size: 768 })).rejects.toThrow(/block_size/);
      await expect(s.call('nbd_start_disk', { bdev_name: 'm0', nbd_device: '/dev/nbd3' })).rejects.toMatchObject({
        code: 'AIONBD_NO_NBD_DRIVER',
        errno: 19,
      });
      expect(s.saveConfig().subsystems.find((x) => x.subsystem === 'nbd')?.config).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it('rpc.py forms of nbd_start_disk, nbd_stop_disk and nbd_get_disks', () => {
    expect(paramsFromArgs('nbd_start_disk', ['aio0'])).toEqual({ bdev_name: 'aio0' });
    expect(
      paramsFromArgs('nbd_start_disk', ['aio0', '/dev/nbd3', '-c', '4', '-t', '10', '--dead-conn-timeout', '30', '-b', '4096', '-r']),
    ).toEqual({
      bdev_name: 'aio0',
      nbd_device: '/dev/nbd3',
      num_connections: 4,
      timeout: 10,
      dead_conn_timeout: 30,
      block_size: 4096,
      readonly: true,
    });
    expect(paramsFromArgs('nbd_stop_disk', ['/dev/nbd3'])).toEqual({ nbd_device: '/dev/nbd3' });
    expect(paramsFromArgs('nbd_get_disks', ['-n', '/dev/nbd3'])).toEqual({ nbd_device: '/dev/nbd3' });
  });

  it.runIf(noDriver)('aionbd attach / detach: one line on stderr and the exit code', async () => {
    requireBuilt();
    const img = path.join(dir, 'a.img');
    const attach = await run(process.execPath, [BIN, 'attach', '--aio', `${img},size=1M`], { timeoutMs: 30_000 });
    expect(attach).toMatchObject({ code: 1, stdout: '' });
    expect(attach.stderr.trim().split('\n').pop()).toBe('aionbd: the kernel has no nbd driver: run "modprobe nbd" as root');
    const detach = await run(process.execPath, [BIN, 'detach', '/dev/nbd0'], { timeoutMs: 30_000 });
    expect(detach).toMatchObject({ code: 1, stderr: 'aionbd: the kernel has no nbd driver: run "modprobe nbd" as root\n' });
    const bad = await run(process.execPath, [BIN, 'detach', '/dev/sda'], { timeoutMs: 30_000 });
    expect(bad).toMatchObject({ code: 2, stderr: 'aionbd: "/dev/sda" is not an nbd device: give /dev/nbdN\n' });
    const noName = await run(process.execPath, [BIN, 'attach'], { timeoutMs: 30_000 });
    expect(noName).toMatchObject({ code: 2 });
    expect(noName.stderr).toContain('name the export to attach, or give --aio FILE');
  });
});
