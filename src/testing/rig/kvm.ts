// Which accelerator a VM boots with: KVM when /dev/kvm opens and can run the guest, else TCG.
// A host whose KVM cannot (nested virtualisation without support) is remembered in the cache,
// per host kernel, so later runs skip the probe.

import { closeSync, constants as fsConstants, openSync, promises as fsp, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';

import { cacheDir } from './cache.js';
import { VmError } from './errors.js';
import type { VmAccel, VmOptions } from './types.js';

// Under KVM the kernel's first console line comes within a second; a KVM
// that cannot run a guest (nested virtualisation without support) hangs
// silently instead, so this long without a line means: fall back to TCG.
export const KVM_PROBE_MS = 15_000;

let kvmBrokenHere = false;

function kvmMarkerPath(): string {
  return join(cacheDir(), 'kvm-broken');
}

/** Whether an earlier run on this host kernel found KVM unable to boot a guest. */
export function kvmKnownBroken(): boolean {
  if (kvmBrokenHere) return true;
  try {
    return readFileSync(kvmMarkerPath(), 'utf8').split('\n').includes(release());
  } catch {
    return false;
  }
}

/** Remembers, here and in the cache, that KVM cannot boot the guest on this host kernel. */
export async function markKvmBroken(): Promise<void> {
  kvmBrokenHere = true;
  try {
    await fsp.mkdir(cacheDir(), { recursive: true });
    await fsp.appendFile(kvmMarkerPath(), `${release()}\n`);
  } catch {
    // Only a speed-up for the next run.
  }
}

/** Whether /dev/kvm opens read-write (which says nothing yet about running a guest). */
export function kvmOpens(): boolean {
  try {
    closeSync(openSync('/dev/kvm', fsConstants.O_RDWR));
    return true;
  } catch {
    return false;
  }
}

/** What the options (or $AIONBD_VM_ACCEL) ask for. */
export function requestedAccel(opts: VmOptions): VmAccel | 'auto' {
  const v = opts.accel ?? process.env['AIONBD_VM_ACCEL'] ?? 'auto';
  if (v === 'kvm' || v === 'tcg' || v === 'auto') return v;
  throw new VmError(`AIONBD_VM_ACCEL must be kvm, tcg or auto, not ${JSON.stringify(v)}`);
}
