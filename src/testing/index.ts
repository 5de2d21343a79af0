// Public API of the kernel test rig (`aionbd/testing`).
export {
  bootVm,
  withVm,
  withKernel,
  ensureKernelAssets,
  VmError,
  VmTimeoutError,
  GUEST_FORWARD_ADDRESS,
  GUEST_SHARE_DIR,
} from './vm.js';
export type { Vm, VmOptions, VmForward, VmAccel, ShOptions, ShResult, KernelAssets } from './vm.js';
