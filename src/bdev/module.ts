/**
 * A bdev module as one self-describing unit: SPDK's module descriptor (bdev_module.h) with the
 * module's RPC methods (SPDK_RPC_REGISTER) beside it. The core never names a module; everything
 * it knows of one comes from here.
 *
 * Adding a module is one new directory and one line (src/modules/passthru/ is the template of
 * a virtual bdev, src/modules/null/ of a device of its own; the README's "Writing a bdev module"
 * walks through the first):
 *  - src/modules/passthru/: the driver (a BdevDriver built by its create function), and an
 *    index.ts that exports `passthruModule = defineModule({...})` with the module's RPC methods
 *    (schema, handler, rpc.py form), plus whatever else it offers the embedded API;
 *  - src/modules/list.ts: `export * from './passthru/index.js';`.
 * From that line the target takes its product name, iostat naming, examine hook and save_config
 * entries; the dispatcher its methods; `aionbd rpc` its forms and help; `bdevs.passthru` its
 * constructor; and src/index.ts its exports.
 */
import type { Logger } from '../log.js';
import { byName, methodsFor, type MethodSpec } from '../method.js';
import { str } from '../method_form.js';
import type { Bdev } from './bdev.js';
import type { ErrnoStatus } from './iostat.js';
import type { AddOptions, BdevRegistry } from './registry.js';
import type { ConfigEntry } from './types.js';

/** What a module's handlers and hooks may use of the target that runs them. */
export interface ModuleContext {
  readonly bdevs: BdevRegistry;
  readonly log: Logger;
  /** The queue depth asked for each new bdev that has one (--queue-depth); undefined: the module's default. */
  readonly queueDepth: number | undefined;
  /**
   * Registers b (claiming opts.claims), or closes it when that fails; then examines it, as
   * SPDK does before a create RPC answers.
   */
  register(b: Bdev, opts?: AddOptions): Promise<Bdev>;
  /** Runs every module's examine hook on b (an lvstore on it comes back with its lvols). */
  examine(b: Bdev): Promise<void>;
  /**
   * Gives b a new block count: shrinking is checked as checkShrink() says, attached kernel
   * devices are told before this resolves, new network connections see the new size.
   */
  resizeBdev(b: Bdev, numBlocks: number, force?: boolean): Promise<void>;
  /**
   * Refuses to shrink b to `bytes` while a virtual bdev claims it, or, unless forced, below
   * the size its connected clients (kernel devices too) were told.
   */
  checkShrink(b: Bdev, bytes: number, force: boolean): void;
  /** A module resized bdevs itself: attached kernel devices get their new sizes before this resolves. */
  sizesChanged(): Promise<void>;
}

export interface BdevModule<N extends string = string, C = unknown> {
  /** The driver's module name (Bdev.module), as SPDK names the module. */
  readonly name: N;
  /** bdev_get_bdevs's product_name. */
  readonly productName: string;
  /** How bdev_get_iostat's io_error names a plain -errno failure (SPDK's AIO module says aio_error); default failed. */
  readonly errnoStatus?: ErrnoStatus;
  /** Its bdevs start empty (RAM): examine has nothing to find on them. */
  readonly startsEmpty?: boolean;
  /** The low-level constructor (an unregistered bdev; split: several), exported as `bdevs.<name>`. */
  readonly create?: C;
  /** Its JSON-RPC methods, with their schemas, handlers and rpc.py forms. */
  readonly methods: readonly MethodSpec<ModuleContext>[];
  /** Looks at a newly registered bdev of any other module for something of its own (lvol: an lvstore). */
  examine?(b: Bdev, ctx: ModuleContext): Promise<void>;
  /** save_config entries of the module itself, written before every bdev (rbd: its clusters). */
  configEntries?(ctx: ModuleContext): ConfigEntry[];
  /** The target is closing and every bdev is closed: release what the module holds for it. */
  close?(ctx: ModuleContext): Promise<void>;
}

const described = new WeakSet<object>();

/** Declares a module; the value goes into src/modules/list.ts's exports. */
export function defineModule<const N extends string, C = undefined>(m: BdevModule<N, C>): BdevModule<N, C> {
  described.add(m);
  return m;
}

/** Whether v was made by defineModule() (how the module list finds the descriptors among its exports). */
export function isBdevModule(v: unknown): v is BdevModule {
  return typeof v === 'object' && v !== null && described.has(v);
}

/** State a module keeps per target (rbd's clusters, lvol's lvstores), made on first use. */
export class ModuleState<S> {
  readonly #of = new WeakMap<ModuleContext, S>();
  constructor(private readonly make: (ctx: ModuleContext) => S) {}

  of(ctx: ModuleContext): S {
    let s = this.#of.get(ctx);
    if (s === undefined) {
      s = this.make(ctx);
      this.#of.set(ctx, s);
    }
    return s;
  }

  /** The state if this target has made it. */
  peek(ctx: ModuleContext): S | undefined {
    return this.#of.get(ctx);
  }
}

/** The makers of a module's methods: their handlers get the ModuleContext. */
export const { method, method0 } = methodsFor<ModuleContext>();

/** bdev_<module>_delete NAME: hot-removes a bdev of that module. */
export function deleteMethod(name: string, module: string): MethodSpec<ModuleContext> {
  return method(
    name,
    byName,
    async (p, ctx) => {
      await ctx.bdevs.delete(p.name, module);
      return true;
    },
    { args: [str('name')] },
  );
}
