// The passthru bdev (SPDK's vbdev_passthru): a virtual bdev that claims one base and forwards
// every I/O to it unchanged. It does nothing else, which makes it the template of a virtual
// bdev module: everything here is what any module over a base needs, and no more.
import { Bdev } from '../../bdev/bdev.js';
import { PassThroughDriver } from '../../bdev/passthrough.js';
import type { ConfigEntry } from '../../bdev/types.js';

export interface PassthruBdevOptions {
  name: string;
  uuid?: string | undefined;
}

// PassThroughDriver (the one pass-through helper) already forwards each I/O with its flags word
// whole, answers supports() and block status as the base does, declares the base's IoFlags,
// and follows the base's size when asked to. A module adds its name and what it reports.
class PassthruDriver extends PassThroughDriver {
  readonly module = 'passthru';

  constructor(
    base: Bdev,
    readonly name: string,
  ) {
    super(base, { followResize: true });
  }

  /** driver_specific in bdev_get_bdevs, as SPDK reports it. */
  info(): Record<string, unknown> {
    return { passthru: { name: this.name, base_bdev_name: this.base.name } };
  }

  /** The call that makes it again, for save_config. */
  config(b: Bdev): ConfigEntry {
    return { method: 'bdev_passthru_create', params: { base_bdev_name: this.base.name, name: b.name, uuid: b.uuid } };
  }
}

/** An unregistered passthru bdev over base, of the base's geometry; register it with a claim on base. */
export function createPassthruBdev(base: Bdev, opts: PassthruBdevOptions): Bdev {
  return new Bdev(
    {
      name: opts.name,
      uuid: opts.uuid,
      blockSize: base.blockSize,
      numBlocks: base.numBlocks,
      readonly: base.readonly,
      writeCache: base.writeCache,
      optimalIoBoundary: base.optimalIoBoundary,
    },
    new PassthruDriver(base, opts.name),
  );
}
