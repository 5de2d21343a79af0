// The lvol module: logical volumes in lvstores on other bdevs, with snapshots and clones
// (SPDK's bdev_lvol, in our own on-disk format).
import { defineModule } from '../../bdev/module.js';
import { LVOL_METHODS } from './methods.js';
import { forgetLvstores, lvstoresOf } from './ops.js';

const NAME = 'lvol';

export const lvolModule = defineModule({
  name: NAME,
  productName: 'Logical Volume',
  methods: LVOL_METHODS,
  // An lvstore found on a new bdev comes back with its lvols; none is looked for inside an lvol.
  examine: async (b, ctx) => {
    if (b.module !== NAME) await lvstoresOf(ctx).examine(b);
  },
  close: (ctx) => {
    forgetLvstores(ctx);
    return Promise.resolve();
  },
});

export type { LvstoreInfo } from './lvstores.js';
export type { LvolParams } from './ops.js';
