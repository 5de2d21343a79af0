// The core's JSON-RPC methods (the bdev modules declare their own): each group is a file that
// knows its methods; the dispatcher knows none.
import type { MethodSpec } from '../../method.js';
import type { RpcHost } from '../dispatcher.js';
import { BDEV_METHODS } from './bdev.js';
import { BDEV_SETTINGS_METHODS } from './bdev_settings.js';
import { CONFIG_METHODS } from './config.js';
import { LOG_METHODS } from './log.js';
import { MISC_METHODS } from './misc.js';
import { NBD_METHODS } from './nbd.js';
import { NBD_DISK_METHODS } from './nbd_disk.js';

/** In the order rpc_get_methods lists them; the modules' methods follow. */
export const CORE_METHODS: readonly MethodSpec<RpcHost>[] = [
  ...MISC_METHODS,
  ...LOG_METHODS,
  ...BDEV_METHODS,
  ...BDEV_SETTINGS_METHODS,
  ...NBD_METHODS,
  ...NBD_DISK_METHODS,
  ...CONFIG_METHODS,
];
