// Errors of the kernel test rig.

export class VmError extends Error {
  override name = 'VmError';
}

/** A command or the boot ran out of time; `output` holds what the command printed so far. */
export class VmTimeoutError extends VmError {
  override name = 'VmTimeoutError';
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
  }
}

/** The guest did not come up; kernelStarted tells a failing accelerator from a failing guest. */
export class BootError extends VmError {
  override name = 'BootError';
  constructor(
    message: string,
    /** False if the kernel never printed a line: the accelerator, not the guest, failed. */
    readonly kernelStarted: boolean,
  ) {
    super(message);
  }
}

/** A command run by Kernel.run() exited non-zero; the message holds its output (and the guest console's tail). */
export class KernelCommandError extends Error {
  override name = 'KernelCommandError';
  constructor(
    readonly command: string,
    readonly code: number,
    readonly output: string,
    context: string,
  ) {
    super(`command failed (exit ${code}): ${command}\n${output}${context}`);
  }
}
