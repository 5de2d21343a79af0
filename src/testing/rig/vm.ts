// Boots the test VM (qemu_vm.ts): the kernel assets first, then KVM where it works, else TCG.
//
// Environment knobs: AIONBD_CACHE_DIR (kernel cache, see kernel_assets.ts),
// AIONBD_VM_ACCEL=kvm|tcg|auto, AIONBD_VM_CONSOLE=stderr (echo the console),
// AIONBD_KERNEL_VERSION (pick a cached kernel), AIONBD_VM_BZIMAGE=1 (boot the
// compressed image, not the PVH vmlinux).

import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ERROR_TAIL_LINES } from './console.js';
import { BootError } from './errors.js';
import { ensureKernelAssets, type KernelAssets } from './kernel_assets.js';
import { KVM_PROBE_MS, kvmKnownBroken, kvmOpens, markKvmBroken, requestedAccel } from './kvm.js';
import { validate } from './qemu_args.js';
import { QemuVm } from './qemu_vm.js';
import type { Vm, VmAccel, VmOptions } from './types.js';

const DEFAULT_MEMORY_MIB = 1024;
// One vCPU: the guest's work is mostly one process at a time. On an idle two-core host a
// second TCG vCPU thread gains these tests nothing when the NBD server runs on the host (it
// takes the core the server needs); on a busy host it costs a third of the time and more (a
// preempted vCPU holding a guest lock stalls the other, each exec flushes both TLBs).
const DEFAULT_CPUS = 1;
const DEFAULT_BOOT_TIMEOUT_MS = 120_000;

async function bootWith(assets: KernelAssets, opts: VmOptions, accel: VmAccel, probeMs: number | undefined): Promise<QemuVm> {
  const { forwards, shareDir } = validate(opts);
  const dir = await fsp.mkdtemp(join(tmpdir(), 'aionbd-vm-'));
  const vm = new QemuVm(accel, assets.version, dir, opts);
  try {
    await vm.start(
      {
        assets,
        accel,
        memoryMiB: opts.memoryMiB ?? DEFAULT_MEMORY_MIB,
        cpus: opts.cpus ?? DEFAULT_CPUS,
        commandSocket: join(dir, 'cmd.sock'),
        shareDir,
        forwards,
        kernelArgs: opts.kernelArgs,
      },
      { bootTimeoutMs: opts.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS, probeMs },
    );
  } catch (e) {
    await vm.close();
    throw e;
  }
  return vm;
}

/** Boots a VM; the caller must close() it (or use withVm). */
export async function bootVm(opts: VmOptions = {}): Promise<Vm> {
  validate(opts);
  const assets = await ensureKernelAssets();
  const want = requestedAccel(opts);
  if (want === 'kvm') return bootWith(assets, opts, 'kvm', undefined);
  if (want === 'auto' && !kvmKnownBroken() && kvmOpens()) {
    try {
      return await bootWith(assets, opts, 'kvm', KVM_PROBE_MS);
    } catch (e) {
      if (!(e instanceof BootError) || e.kernelStarted) throw e;
      // /dev/kvm opens but cannot run this guest (seen under nested
      // virtualisation: QEMU aborts setting an MSR, or the vCPU spins).
      await markKvmBroken();
      opts.log?.(`aionbd: KVM cannot boot the guest (${e.message.split('\n')[0]}); using TCG`);
    }
  }
  return bootWith(assets, opts, 'tcg', undefined);
}

/** Boots a VM, runs `fn`, and always closes the VM, also when `fn` throws or a command times out. */
export async function withVm<T>(opts: VmOptions, fn: (vm: Vm) => Promise<T>): Promise<T> {
  const vm = await bootVm(opts);
  try {
    return await fn(vm);
  } catch (e) {
    if (opts.consoleOnError !== false) {
      process.stderr.write(`--- guest console, last ${ERROR_TAIL_LINES} lines ---\n${vm.consoleTail()}\n---\n`);
    }
    throw e;
  } finally {
    await vm.close();
  }
}
