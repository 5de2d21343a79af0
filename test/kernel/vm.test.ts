// Tests of the kernel VM rig itself (src/testing): boot, the command
// channel, the NBD path through a guestfwd, and teardown.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseKernelDepends } from '../../src/testing/rig/apt.js';
import { writeCpio } from '../../src/testing/rig/cpio.js';
import { resolveModuleOrder, type ModuleIndex } from '../../src/testing/rig/module_deps.js';
import { qemuArgs } from '../../src/testing/rig/qemu_args.js';
import {
  bootVm,
  ensureKernelAssets,
  GUEST_FORWARD_ADDRESS,
  GUEST_SHARE_DIR,
  VmTimeoutError,
  withVm,
  type KernelAssets,
  type Vm,
} from '../../src/testing/index.js';

// What the rig and these tests run on the host (and, through the shared
// root, in the guest).
const TOOLS = [
  'qemu-system-x86_64',
  'socat',
  'apt-get',
  'dpkg-deb',
  'depmod',
  'modprobe',
  'busybox',
  'xz',
  'nbd-client',
  'nbdkit',
  'mkfs.ext4',
  'e2fsck',
  'mkfs.xfs',
  'sha256sum',
];

function onPath(tool: string): boolean {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  return dirs.some((d) => {
    try {
      accessSync(join(d, tool), fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const CI = process.env['CI'] === 'true';
const missing = TOOLS.filter((t) => !onPath(t));
const skip = missing.length > 0 && !CI;
if (skip) {
  console.warn(`kernel VM tests skipped: missing ${missing.join(', ')} (CI=true would fail instead)`);
}

/** In CI a missing tool is a failure, not a reason to skip. */
function requireTools(): void {
  if (missing.length > 0) throw new Error(`missing tools for the kernel VM tests: ${missing.join(', ')}`);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('kernel VM rig: pieces that need no VM', () => {
  it('reads the versioned kernel package out of the metapackage', () => {
    expect(parseKernelDepends('linux-image-6.1.0-56-amd64 (= 6.1.192-2)')).toEqual({
      pkg: 'linux-image-6.1.0-56-amd64',
      version: '6.1.192-2',
    });
    expect(parseKernelDepends('linux-image-6.12.9-amd64')).toEqual({ pkg: 'linux-image-6.12.9-amd64', version: undefined });
    expect(() => parseKernelDepends('initramfs-tools')).toThrow(/no linux-image/);
  });

  it('orders modules after their dependencies and soft dependencies, leaving built-ins out', () => {
    const idx: ModuleIndex = {
      paths: new Map([
        ['ext4', 'kernel/fs/ext4/ext4.ko'],
        ['jbd2', 'kernel/fs/jbd2/jbd2.ko'],
        ['crc16', 'kernel/lib/crc16.ko'],
        ['crc32c_generic', 'kernel/crypto/crc32c_generic.ko'],
      ]),
      deps: new Map([
        ['kernel/fs/ext4/ext4.ko', ['kernel/lib/crc16.ko', 'kernel/fs/jbd2/jbd2.ko']],
        ['kernel/fs/jbd2/jbd2.ko', []],
        ['kernel/lib/crc16.ko', []],
        ['kernel/crypto/crc32c_generic.ko', []],
      ]),
      builtin: new Set(['crc32']),
      aliases: new Map([['crypto-crc32c', ['crc32c_generic']]]),
      softPre: new Map([
        ['ext4', ['crypto-crc32c']],
        ['jbd2', ['crypto-crc32c', 'no-such-module']],
      ]),
      softPost: new Map(),
    };
    expect(resolveModuleOrder(idx, ['crc32', 'ext4'])).toEqual([
      'kernel/crypto/crc32c_generic.ko',
      'kernel/lib/crc16.ko',
      'kernel/fs/jbd2/jbd2.ko',
      'kernel/fs/ext4/ext4.ko',
    ]);
    // A second list shares the first one's progress.
    const done = new Set<string>();
    resolveModuleOrder(idx, ['jbd2'], done);
    expect(resolveModuleOrder(idx, ['ext4'], done)).toEqual(['kernel/lib/crc16.ko', 'kernel/fs/ext4/ext4.ko']);
    expect(() => resolveModuleOrder(idx, ['nbd'])).toThrow(/nbd/);
  });

  it('writes a newc cpio archive that cpio lists', async () => {
    const archive = writeCpio([
      { name: 'dev', mode: 0o040755 },
      { name: 'dev/console', mode: 0o020600, rdevMajor: 5, rdevMinor: 1 },
      { name: 'init', mode: 0o100755, data: Buffer.from('#!/bin/sh\n') },
    ]);
    expect(archive.subarray(0, 6).toString()).toBe('070701');
    expect(archive.length % 4).toBe(0);
    expect(archive.includes(Buffer.from('TRAILER!!!'))).toBe(true);
    if (onPath('busybox')) {
      const listed = await new Promise<string>((resolve, reject) => {
        const p = spawn('busybox', ['cpio', '-t'], { stdio: ['pipe', 'pipe', 'ignore'] });
        let out = '';
        p.stdout.on('data', (b: Buffer) => (out += b.toString()));
        p.on('error', reject);
        p.on('close', () => resolve(out));
        p.stdin.end(archive);
      });
      expect(listed.split('\n').filter(Boolean)).toEqual(['dev', 'dev/console', 'init']);
    }
  });

  it('keeps the guest network closed: restrict=on, guestfwd to unix sockets only, no hostfwd', () => {
    const args = qemuArgs({
      assets: { kernel: '/k', initrd: '/i', version: 'v', modulesDir: '/m' },
      accel: 'tcg',
      memoryMiB: 512,
      cpus: 1,
      commandSocket: '/tmp/x/cmd.sock',
      shareDir: '/tmp/a,b',
      forwards: [{ guestPort: 10809, hostSocket: '/tmp/x/nbd.sock' }],
    });
    const netdev = args[args.indexOf('-netdev') + 1] ?? '';
    expect(netdev).toBe('user,id=net0,restrict=on,guestfwd=tcp:10.0.2.100:10809-cmd:socat STDIO UNIX-CONNECT:/tmp/x/nbd.sock');
    expect(args.join(' ')).not.toMatch(/hostfwd|tcp::|-nic/);
    const virtfs = args.filter((_, i) => args[i - 1] === '-virtfs');
    expect(virtfs.filter((v) => v.startsWith('local,path=/,'))).toHaveLength(2);
    for (const v of virtfs.filter((x) => x.startsWith('local,path=/,'))) expect(v).toContain('readonly=on');
    // QEMU's option syntax doubles commas inside a value.
    expect(virtfs).toContain('local,path=/tmp/a,,b,mount_tag=share,security_model=none,multidevs=remap');
  });
});

describe.skipIf(skip)('kernel VM rig', () => {
  describe('one VM for several tests', () => {
    let assets: KernelAssets;
    let vm: Vm | undefined;
    let dir: string;
    let shareDir: string;
    let nbdSocket: string;
    const consoleLines: string[] = [];

    beforeAll(async () => {
      requireTools();
      // First run: apt-get download of ~70 MB and unpacking it.
      assets = await ensureKernelAssets();
      dir = await mkdtemp(join(tmpdir(), 'aionbd-vmtest-'));
      shareDir = join(dir, 'share');
      await mkdir(shareDir);
      nbdSocket = join(dir, 'nbd.sock');
      vm = await bootVm({
        forwards: [{ guestPort: 10809, hostSocket: nbdSocket }],
        shareDir,
        log: (l) => consoleLines.push(l),
      });
    }, 300_000);

    afterAll(async () => {
      await vm?.close();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    }, 30_000);

    const guest = (): Vm => {
      if (vm === undefined) throw new Error('VM did not boot');
      return vm;
    };

    it('boots the cached kernel and runs commands, each with its own exit code and output', async () => {
      const v = guest();
      expect(v.bootMs).toBeGreaterThan(0);
      expect(['kvm', 'tcg']).toContain(v.accel);
      console.info(`guest booted in ${v.bootMs} ms under ${v.accel}`);

      expect(await v.sh('uname -r')).toEqual({ code: 0, output: `${assets.version}\n` });
      expect(v.kernelVersion).toBe(assets.version);
      expect(await v.sh('echo hi')).toEqual({ code: 0, output: 'hi\n' });
      expect(await v.sh('exit 3')).toEqual({ code: 3, output: '' });
      expect(await v.sh('false')).toEqual({ code: 1, output: '' });
      // stderr is captured too, and output without a final newline is kept as is.
      expect(await v.sh('echo oops >&2; printf abc; exit 5')).toEqual({ code: 5, output: 'oops\nabc' });
      // Quotes, backslashes and newlines reach the guest's shell unchanged.
      const tricky = `a'b"c \\ $HOME %s`;
      expect(await v.sh(`cat <<'EOF'\n${tricky}\nEOF`)).toEqual({ code: 0, output: `${tricky}\n` });
      // State is kept between commands.
      expect((await v.sh('cd /tmp && touch x')).code).toBe(0);
      expect(await v.sh('ls /tmp/x')).toEqual({ code: 0, output: '/tmp/x\n' });
      // A large output arrives whole.
      const big = await v.sh("head -c 300000 /dev/zero | tr '\\0' x");
      expect(big.code).toBe(0);
      expect(big.output).toBe('x'.repeat(300_000));
      // The host's root is there, read-only.
      expect((await v.sh('test -x /usr/bin/nbd-client || test -x /usr/sbin/nbd-client')).code).toBe(0);
      expect((await v.sh('touch /usr/aionbd-should-fail')).code).not.toBe(0);
      // The console went to the log option.
      expect(consoleLines.some((l) => l.startsWith('aionbd'))).toBe(true);
    }, 60_000);

    it('shares a writable host directory both ways', async () => {
      const v = guest();
      await writeFile(join(shareDir, 'from-host.txt'), 'host data\n');
      expect(await v.sh(`cat ${GUEST_SHARE_DIR}/from-host.txt`)).toEqual({ code: 0, output: 'host data\n' });
      expect((await v.sh(`echo guest data > ${GUEST_SHARE_DIR}/from-guest.txt`)).code).toBe(0);
      expect(await readFile(join(shareDir, 'from-guest.txt'), 'utf8')).toBe('guest data\n');
    }, 30_000);

    it('has the nbd driver loaded: /dev/nbd0 and /sys/block/nbd0 exist', async () => {
      const v = guest();
      expect((await v.sh('modprobe nbd')).code).toBe(0);
      expect((await v.sh('grep -w ^nbd /proc/modules')).code).toBe(0);
      expect((await v.sh('test -b /dev/nbd0 && test -d /sys/block/nbd0')).code).toBe(0);
    }, 30_000);

    it('attaches a host NBD server through a forward: ext4 and xfs on /dev/nbd0', async () => {
      const v = guest();
      let server: ChildProcess | undefined;
      const started = Date.now();
      try {
        // nbdkit stands in for aionbd here. 512M: mkfs.xfs refuses less than 300 MB.
        server = spawn('nbdkit', ['--unix', nbdSocket, '--foreground', '--exit-with-parent', 'memory', '512M'], {
          stdio: ['ignore', 'inherit', 'inherit'],
        });
        const srv = server;
        await waitFor(() => existsSync(nbdSocket) || srv.exitCode !== null, 10_000, 'nbdkit socket');
        expect(srv.exitCode).toBeNull();

        const ok = async (cmd: string): Promise<string> => {
          const r = await v.sh(cmd, { timeoutMs: 90_000 });
          expect(r, `${cmd}\n${r.output}`).toMatchObject({ code: 0 });
          return r.output;
        };
        // nbdkit's default export is named "".
        await ok(`nbd-client -N '' ${GUEST_FORWARD_ADDRESS} 10809 /dev/nbd0`);
        expect((await ok('cat /sys/block/nbd0/size')).trim()).toBe(String((512 * 1024 * 1024) / 512));

        await ok('mkfs.ext4 -q /dev/nbd0');
        await ok('mount /dev/nbd0 /mnt');
        await ok('dd if=/dev/urandom of=/mnt/data bs=1M count=16 status=none');
        const written = (await ok('sha256sum < /mnt/data')).split(' ')[0];
        await ok('umount /mnt');
        // Read it back from the server, not from the guest's caches.
        await ok('echo 3 > /proc/sys/vm/drop_caches && blockdev --flushbufs /dev/nbd0');
        const reread = await ok(`mount -o ro /dev/nbd0 /mnt && cp /mnt/data ${GUEST_SHARE_DIR}/data && sha256sum < /mnt/data`);
        expect(reread.split(' ')[0]).toBe(written);
        await ok('umount /mnt');
        expect(sha256(await readFile(join(shareDir, 'data')))).toBe(written);
        const fsck = await v.sh('e2fsck -fn /dev/nbd0', { timeoutMs: 60_000 });
        expect(fsck.code, fsck.output).toBe(0);

        // xfs is not in the initramfs: this also proves the kernel's module
        // requests reach the full module tree.
        await ok('mkfs.xfs -f -q /dev/nbd0');
        await ok('mount -t xfs /dev/nbd0 /mnt && echo xfs > /mnt/f && sync && umount /mnt');
        await ok('grep -w ^xfs /proc/modules');
        await ok('nbd-client -d /dev/nbd0');
        console.info(`NBD attach/ext4/xfs cycle took ${Date.now() - started} ms`);
      } finally {
        server?.kill('SIGTERM');
      }
    }, 240_000);
  });

  it('rejects a command that outlives its timeout, and withVm tears the VM down', async () => {
    requireTools();
    let pid = -1;
    let rejectedAfter = -1;
    const t0 = Date.now();
    await expect(
      withVm({ consoleOnError: false }, async (vm) => {
        pid = vm.pid;
        expect(processGone(pid)).toBe(false);
        const t = Date.now();
        const err: unknown = await vm.sh('sleep 600', { timeoutMs: 2_000 }).catch((e: unknown) => e);
        rejectedAfter = Date.now() - t;
        expect(err).toBeInstanceOf(VmTimeoutError);
        // The channel is out of step now: the VM takes no more commands.
        await expect(vm.sh('true')).rejects.toThrow(/broken|closed/);
        throw err;
      }),
    ).rejects.toBeInstanceOf(VmTimeoutError);
    expect(rejectedAfter).toBeGreaterThanOrEqual(1_900);
    expect(rejectedAfter).toBeLessThan(5_000);
    // withVm has returned: QEMU is gone, not merely signalled.
    expect(pid).toBeGreaterThan(0);
    expect(processGone(pid)).toBe(true);
    console.info(`timeout test: ${Date.now() - t0} ms including boot and teardown`);
  }, 180_000);
});
