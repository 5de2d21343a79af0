// What a test sees of the VM: its options, what a command returns, and the Vm itself.

export interface VmForward {
  /** The guest connects to 10.0.2.100:guestPort ... */
  guestPort: number;
  /** ... and reaches this unix socket on the host (connected afresh for each guest connection). */
  hostSocket: string;
}

export type VmAccel = 'kvm' | 'tcg';

export interface VmOptions {
  forwards?: VmForward[];
  /** Host directory, writable, mounted in the guest at /share. */
  shareDir?: string;
  /** Default 1024. */
  memoryMiB?: number;
  /**
   * Default 1. Ask for more where the guest's CPU count matters: blk-mq gives an nbd device
   * one hardware queue per connection only up to the CPU count, so several connections
   * carry requests only with several CPUs; and node in the guest starts faster with a
   * second CPU for V8's background threads (on an idle host).
   */
  cpus?: number;
  /** Default 120000 (TCG on two cores is slow to boot when the machine is busy). */
  bootTimeoutMs?: number;
  /** Receives each kernel console line (and QEMU's stderr, prefixed "qemu: "). */
  log?: (line: string) => void;
  /**
   * 'auto' (the default, or $AIONBD_VM_ACCEL): KVM if /dev/kvm opens and a
   * kernel boots under it, else TCG. 'kvm' fails rather than fall back.
   */
  accel?: VmAccel | 'auto';
  /** withVm only: print the console tail to stderr when `fn` throws. Default true. */
  consoleOnError?: boolean;
  /**
   * Appended to the kernel command line. The console shows warnings and
   * worse (loglevel=5) unless this says otherwise, e.g. ['loglevel=7'];
   * `dmesg` in the guest always has everything.
   */
  kernelArgs?: string[];
}

export interface ShOptions {
  /** Default 120000. On expiry the promise rejects and the VM is torn down. */
  timeoutMs?: number;
}

export interface ShResult {
  /** Exit code of the command's shell. */
  code: number;
  /** stdout and stderr, interleaved as written. */
  output: string;
}

export interface Vm {
  /** Runs `command` with /bin/sh in the guest, as root, cwd /, stdin /dev/null. */
  sh(command: string, opts?: ShOptions): Promise<ShResult>;
  /** Milliseconds from starting QEMU to the guest taking commands. */
  readonly bootMs: number;
  readonly accel: VmAccel;
  /** QEMU's process id. */
  readonly pid: number;
  /** The guest kernel's release (`uname -r`). */
  readonly kernelVersion: string;
  /** The last `lines` lines of the kernel console. */
  consoleTail(lines?: number): string;
  /** Powers the VM off (kills QEMU); bounded in time, idempotent. */
  close(): Promise<void>;
}
