// Public API of the kernel test rig (`aionbd/testing`).
export {
  bootVm,
  withVm,
  ensureKernelAssets,
  VmError,
  VmTimeoutError,
  GUEST_FORWARD_ADDRESS,
  GUEST_SHARE_DIR,
} from './vm.js';
export type { Vm, VmOptions, VmForward, VmAccel, ShOptions, ShResult, KernelAssets } from './vm.js';
export { withKernel, startKernel, KernelCommandError } from './kernel.js';
export type { Kernel, KernelOptions, KernelExport, AttachSettings } from './kernel.js';
export { startCephCluster, attachCephCluster, stopCephCluster, missingCephTools, CephStartError } from './ceph.js';
export type { CephCluster, CephClusterOptions } from './ceph.js';
