// The raid module: raid0 over several bdevs (SPDK's bdev_raid, level 0 only).
import { defineModule } from '../../bdev/module.js';
import { createRaid0Bdev } from './raid0.js';
import { RAID_METHODS } from './methods.js';

export const raidModule = defineModule({ name: 'raid', productName: 'Raid Volume', create: createRaid0Bdev, methods: RAID_METHODS });

export { createRaid0Bdev, type Raid0Options } from './raid0.js';
export type { RaidParams } from './ops.js';
