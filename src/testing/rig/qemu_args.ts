// QEMU's command line for the test VM, and the checks on what a test may put into it.

import { statSync } from 'node:fs';

import { VmError } from './errors.js';
import {
  CMDLINE_MODULES,
  CMDLINE_SHARE,
  COMMAND_PORT_NAME,
  GUEST_FORWARD_ADDRESS,
  TAG_HOSTLIVE,
  TAG_HOSTROOT,
  TAG_MODULES,
  TAG_SHARE,
} from './guest_init.js';
import type { KernelAssets } from './kernel_assets.js';
import type { VmAccel, VmForward, VmOptions } from './types.js';

// socat splits addresses on ':' and ',' and QEMU runs the command through
// /bin/sh: allow only characters that mean nothing to either.
const SAFE_SOCKET_PATH = /^\/[A-Za-z0-9._/@+=-]+$/;

/** QEMU's option parser takes ",," for a literal comma. */
function qemuValue(s: string): string {
  return s.replace(/,/g, ',,');
}

export interface QemuArgsInput {
  assets: KernelAssets;
  accel: VmAccel;
  memoryMiB: number;
  cpus: number;
  commandSocket: string;
  shareDir?: string | undefined;
  forwards: readonly VmForward[];
  kernelArgs?: readonly string[] | undefined;
}

export function qemuArgs(p: QemuArgsInput): string[] {
  // loglevel=5: a full boot log over the emulated UART costs half a second
  // under TCG, and says nothing a failing test needs that dmesg lacks.
  // cryptomgr.notests: the crypto self-tests run at boot and at each crypto
  // module's load (crc32c for ext4), a quarter of a second under TCG; they
  // check the kernel's crypto code, which no test here is about.
  const append = ['console=ttyS0', 'loglevel=5', 'panic=-1', 'rdinit=/init', 'cryptomgr.notests=1', CMDLINE_MODULES];
  if (p.shareDir !== undefined) append.push(CMDLINE_SHARE);
  append.push(...(p.kernelArgs ?? []));
  const netdev = ['user', 'id=net0', 'restrict=on'];
  for (const f of p.forwards) {
    netdev.push(`guestfwd=tcp:${GUEST_FORWARD_ADDRESS}:${f.guestPort}-cmd:socat STDIO UNIX-CONNECT:${f.hostSocket}`);
  }
  const virtfs = (path: string, tag: string, readonly: boolean): string[] => [
    '-virtfs',
    `local,path=${qemuValue(path)},mount_tag=${tag},security_model=none,multidevs=remap${readonly ? ',readonly=on' : ''}`,
  ];
  const args = [
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    // q35 rather than pc: on pc each virtio device's interrupt goes through
    // an ACPI link device whose AML takes ~150 ms per device to run under TCG.
    '-machine',
    'q35',
    ...(p.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max']),
    '-m',
    String(p.memoryMiB),
    '-smp',
    String(p.cpus),
    '-kernel',
    p.assets.kernel,
    '-initrd',
    p.assets.initrd,
    '-append',
    append.join(' '),
    '-chardev',
    'stdio,id=console,signal=off',
    '-serial',
    'chardev:console',
    '-device',
    'virtio-serial-pci,id=vser0',
    '-chardev',
    `socket,id=cmd,path=${qemuValue(p.commandSocket)}`,
    '-device',
    `virtserialport,bus=vser0.0,chardev=cmd,name=${COMMAND_PORT_NAME}`,
    ...virtfs('/', TAG_HOSTROOT, true),
    ...virtfs('/', TAG_HOSTLIVE, true),
    ...virtfs(p.assets.modulesDir, TAG_MODULES, true),
    ...(p.shareDir !== undefined ? virtfs(p.shareDir, TAG_SHARE, false) : []),
    '-netdev',
    netdev.join(','),
    '-device',
    'virtio-net-pci,netdev=net0',
  ];
  return args;
}

/** Checks what a test asked for before anything starts; returns the forwards and the share. */
export function validate(opts: VmOptions): { forwards: VmForward[]; shareDir: string | undefined } {
  const forwards = opts.forwards ?? [];
  const ports = new Set<number>();
  for (const f of forwards) {
    if (!Number.isInteger(f.guestPort) || f.guestPort < 1 || f.guestPort > 65535) {
      throw new VmError(`forward guestPort must be 1..65535, not ${f.guestPort}`);
    }
    if (ports.has(f.guestPort)) throw new VmError(`guestPort ${f.guestPort} is forwarded twice`);
    ports.add(f.guestPort);
    if (!SAFE_SOCKET_PATH.test(f.hostSocket)) {
      throw new VmError(`forward hostSocket must be an absolute path of [A-Za-z0-9._/@+=-]: ${f.hostSocket}`);
    }
  }
  const shareDir = opts.shareDir;
  if (shareDir !== undefined) {
    let isDir = false;
    try {
      isDir = statSync(shareDir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) throw new VmError(`shareDir is not a directory: ${shareDir}`);
  }
  for (const [name, v] of [
    ['memoryMiB', opts.memoryMiB],
    ['cpus', opts.cpus],
  ] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new VmError(`${name} must be a positive integer`);
  }
  return { forwards, shareDir };
}
