// A virtual bdev over one base (SPDK's passthru template): every I/O goes to the base with its
// flags, its range shifted by a fixed offset; the base's capabilities, flags and block status are
// the virtual bdev's. error, delay and split are this plus their own hooks.
import type { Bdev } from './bdev.js';
import { blockStatus, knowsDepth } from './block_status.js';
import { PassThrough, type ChildIo } from './child_io.js';
import type { BdevDriver, BdevIo, BlockExtent, ConfigEntry, IoType } from './types.js';

export interface PassThroughOptions {
  /** Bytes added to the offset of each ranged I/O and block status query (split's part offset). */
  shift?: number;
  /** The virtual bdev grows and shrinks with its base (rescan), as one covering the base whole does. */
  followResize?: boolean;
}

export abstract class PassThroughDriver implements BdevDriver {
  abstract readonly module: string;
  readonly ioFlags: number;
  readonly shift: number;
  protected readonly children = new PassThrough((c) => this.childDone(c));
  readonly #followResize: boolean;
  #unsubscribe: (() => void) | null = null;

  constructor(
    readonly base: Bdev,
    opts: PassThroughOptions = {},
  ) {
    this.ioFlags = base.ioFlags;
    this.shift = opts.shift ?? 0;
    this.#followResize = opts.followResize ?? false;
  }

  attach(b: Bdev): void {
    if (this.#followResize)
      this.#unsubscribe = this.base.onResize(() => {
        b.resize(this.base.numBlocks);
      });
  }

  supports(type: IoType): boolean {
    return this.base.supports(type);
  }

  submit(io: BdevIo): void {
    this.children.forward(io, this.base, this.shift);
  }

  /**
   * The hook on each finished child: true lets its parent complete with the child's result now;
   * false keeps it, and the module calls children.settle(child) later.
   */
  protected childDone(_child: ChildIo): boolean {
    return true;
  }

  // I/O hooks are for I/O: block status is the base's, for the same (shifted) range.
  blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    return blockStatus(this.base, offset + this.shift, length);
  }
  knowsDepth(): boolean {
    return knowsDepth(this.base);
  }

  abstract info(): Record<string, unknown>;
  abstract config(b: Bdev): ConfigEntry | null;

  destruct(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    return Promise.resolve();
  }
}
