// The bdevs of one process (or one server): names and aliases share one namespace.
import { BdevExistsError, BdevNotFoundError } from '../errors.js';
import type { Bdev } from './bdev.js';
import { IoType, newIo } from './types.js';

export class BdevRegistry {
  readonly #byName = new Map<string, Bdev>();
  readonly #all: Bdev[] = [];

  add(b: Bdev): Bdev {
    const names = [b.name, ...b.aliases];
    for (const n of names) if (this.#byName.has(n)) throw new BdevExistsError(n);
    for (const n of names) this.#byName.set(n, b);
    this.#all.push(b);
    return b;
  }

  get(name: string): Bdev {
    const b = this.#byName.get(name) ?? this.#all.find((x) => x.uuid === name);
    if (b === undefined) throw new BdevNotFoundError(name);
    return b;
  }

  has(name: string): boolean { return this.#byName.has(name); }
  list(): readonly Bdev[] { return this.#all; }

  async delete(name: string): Promise<void> {
    const b = this.get(name);
    for (const n of [b.name, ...b.aliases]) this.#byName.delete(n);
    this.#all.splice(this.#all.indexOf(b), 1);
    await b.close();
  }

  /** Flushes every writable bdev, then closes them all (server shutdown). */
  async closeAll(): Promise<void> {
    const all = this.#all.splice(0);
    this.#byName.clear();
    await Promise.all(all.map(async (b) => {
      if (!b.readonly && !b.closed && b.supports(IoType.Flush)) await flush(b);
      await b.close();
    }));
  }
}

/** One FLUSH through the bdev; resolves with its result (0 or -errno). */
export function flush(b: Bdev): Promise<number> {
  return new Promise((resolve) => {
    const io = newIo((x) => resolve(x.result));
    io.type = IoType.Flush;
    b.submit(io);
  });
}
