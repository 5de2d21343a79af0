// Public API of the kernel test rig (`aionbd/testing`); the rig itself is in rig/, the test
// Ceph cluster in ceph.ts.
export { bootVm, withVm } from './rig/vm.js';
export { ensureKernelAssets } from './rig/kernel_assets.js';
export { VmError, VmTimeoutError, KernelCommandError } from './rig/errors.js';
export { GUEST_FORWARD_ADDRESS, GUEST_SHARE_DIR } from './rig/guest_init.js';
export type { Vm, VmOptions, VmForward, VmAccel, ShOptions, ShResult } from './rig/types.js';
export type { KernelAssets } from './rig/kernel_assets.js';
export { withKernel, startKernel } from './rig/with_kernel.js';
export type { Kernel, KernelOptions, KernelExport, AttachSettings } from './rig/with_kernel.js';
export { startCephCluster, attachCephCluster, stopCephCluster, missingCephTools, CephStartError } from './ceph.js';
export type { CephCluster, CephClusterOptions } from './ceph.js';
