// Every method group, registered in one place. Each group is a file that knows its methods;
// the dispatcher knows none.
import type { Server } from '../../target.js';
import type { Registrar } from '../dispatcher.js';
import { registerAioMethods } from './aio.js';
import { registerBdevMethods } from './bdev.js';
import { registerBdevSettingsMethods } from './bdev_settings.js';
import { registerConfigMethods } from './config.js';
import { registerDelayMethods } from './delay.js';
import { registerErrorMethods } from './error.js';
import { registerLogMethods } from './log.js';
import { registerLvolMethods } from './lvol.js';
import { registerMallocMethods } from './malloc.js';
import { registerMiscMethods } from './misc.js';
import { registerNbdMethods } from './nbd.js';
import { registerNbdDiskMethods } from './nbd_disk.js';
import { registerRaidMethods } from './raid.js';
import { registerRbdMethods } from './rbd.js';
import { registerSplitMethods } from './split.js';

export function registerAll(r: Registrar, s: Server): void {
  registerMiscMethods(r);
  registerLogMethods(r, s);
  registerBdevMethods(r, s);
  registerBdevSettingsMethods(r, s);
  registerAioMethods(r, s);
  registerMallocMethods(r, s);
  registerErrorMethods(r, s);
  registerDelayMethods(r, s);
  registerRaidMethods(r, s);
  registerSplitMethods(r, s);
  registerLvolMethods(r, s);
  registerRbdMethods(r, s);
  registerNbdMethods(r, s);
  registerNbdDiskMethods(r, s);
  registerConfigMethods(r, s);
}
