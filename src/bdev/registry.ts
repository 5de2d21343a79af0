// The bdevs of one process (or one server): names, aliases and UUIDs share one namespace.
// Claims (a virtual bdev over its base) and deletion (hot-remove) are enforced here.
import { BdevClaimedError, BdevExistsError, BdevInUseError, BdevNotFoundError, BdevWrongModuleError } from '../errors.js';
import type { Bdev } from './bdev.js';
import { ioOnce } from './io_once.js';
import { IoType } from './types.js';

export interface AddOptions {
  /** Bases this bdev claims (exclusive write), atomically with its registration. */
  claims?: Bdev[];
  /** Bdevs of one group share a claim on their base (split parts): the group's name. */
  claimGroup?: string;
}

export class BdevRegistry {
  readonly #byName = new Map<string, Bdev>();
  readonly #all: Bdev[] = [];
  readonly #claimsOf = new Map<Bdev, Bdev[]>();
  /**
   * Whether something outside the bdev layer writes to b (an NBD export). A claim is exclusive
   * write access, as in SPDK, so a bdev with such a writer cannot be claimed; otherwise a
   * client and a virtual bdev would write the same blocks, and save_config would record an
   * export that load_config cannot re-create.
   */
  writer: (b: Bdev) => string | null = () => null;

  /** Registers b under its name, aliases and UUID, claiming opts.claims; all or nothing. */
  add(b: Bdev, opts: AddOptions = {}): Bdev {
    const names = namesOf(b);
    for (const n of names) if (this.#byName.has(n)) throw new BdevExistsError(n);
    const bases = opts.claims ?? [];
    const by = opts.claimGroup ?? b.name;
    for (const base of bases) {
      if (!this.#all.includes(base) || base.closed) throw new BdevNotFoundError(base.name);
      const w = this.writer(base);
      if (w !== null) throw new BdevInUseError(base.name, `${w}; remove it before claiming the bdev`);
      const c = base.claim;
      if (c !== null && !(opts.claimGroup !== undefined && c.by === by && c.module === b.module)) {
        throw new BdevClaimedError(base.name, c.module, c.by);
      }
    }
    if (new Set(bases).size !== bases.length) throw new BdevClaimedError(bases[0]?.name ?? '', b.module, by);
    for (const n of names) this.#byName.set(n, b);
    for (const base of bases) {
      if (base.claim === null) base.claim = { module: b.module, by, count: 1 };
      else base.claim.count++;
    }
    if (bases.length > 0) this.#claimsOf.set(b, bases);
    this.#all.push(b);
    return b;
  }

  /** By name, alias or UUID. */
  get(name: string): Bdev {
    const b = this.#byName.get(name);
    if (b === undefined) throw new BdevNotFoundError(name);
    return b;
  }

  find(name: string): Bdev | undefined {
    return this.#byName.get(name);
  }
  has(name: string): boolean {
    return this.#byName.has(name);
  }
  /** In creation order: every base comes before the bdevs over it. */
  list(): readonly Bdev[] {
    return this.#all;
  }
  /** The bases a virtual bdev claims. */
  basesOf(b: Bdev): readonly Bdev[] {
    return this.#claimsOf.get(b) ?? [];
  }

  /** A claim held by something that is not a bdev (an lvstore on its base). */
  claimFor(base: Bdev, module: string, by: string): void {
    if (!this.#all.includes(base) || base.closed) throw new BdevNotFoundError(base.name);
    if (base.claim !== null) throw new BdevClaimedError(base.name, base.claim.module, base.claim.by);
    const w = this.writer(base);
    if (w !== null) throw new BdevInUseError(base.name, `${w}; remove it before claiming the bdev`);
    base.claim = { module, by, count: 1 };
  }

  /** Drops a claim taken with claimFor(). */
  releaseFor(base: Bdev, by: string): void {
    if (base.claim !== null && base.claim.by === by) base.claim = null;
  }

  /** Throws unless `name` may be exported or opened for writing (SPDK: a claimed bdev gives -EPERM). */
  checkUnclaimed(b: Bdev): void {
    if (b.claim !== null) throw new BdevClaimedError(b.name, b.claim.module, b.claim.by);
  }

  /**
   * Hot-remove: refuses a claimed bdev, unregisters it at once (lookups fail), then closes it:
   * new I/O fails with ESHUTDOWN, remove listeners run (exports drop their connections),
   * in-flight I/O completes, the module releases its resources, and its claims are released.
   * @param module when given, the bdev must belong to that module (bdev_aio_delete and friends).
   */
  async delete(name: string, module?: string): Promise<void> {
    const b = this.get(name);
    if (module !== undefined && b.module !== module) throw new BdevWrongModuleError(name, b.module, module);
    if (b.claim !== null) throw new BdevInUseError(b.name, `claimed by the ${b.claim.module} module (${b.claim.by})`);
    this.#unregister(b);
    await b.close();
    this.#release(b);
  }

  #unregister(b: Bdev): void {
    for (const n of namesOf(b)) if (this.#byName.get(n) === b) this.#byName.delete(n);
    const i = this.#all.indexOf(b);
    if (i >= 0) this.#all.splice(i, 1);
  }

  #release(b: Bdev): void {
    for (const base of this.#claimsOf.get(b) ?? []) {
      if (base.claim !== null && --base.claim.count === 0) base.claim = null;
    }
    this.#claimsOf.delete(b);
  }

  /** Flushes every writable bdev, then closes them all, the topmost first (server shutdown). */
  async closeAll(): Promise<void> {
    const all = this.#all.splice(0).reverse();
    this.#byName.clear();
    for (const b of all) {
      if (!b.readonly && !b.closed && b.supports(IoType.Flush)) await flush(b);
      await b.close();
      this.#release(b);
    }
  }
}

function namesOf(b: Bdev): string[] {
  const names = [b.name, ...b.aliases];
  if (!names.includes(b.uuid)) names.push(b.uuid);
  return names;
}

/** One FLUSH through the bdev; resolves with its result (0 or -errno). */
export function flush(b: Bdev): Promise<number> {
  return ioOnce(b, IoType.Flush, 0, 0);
}
