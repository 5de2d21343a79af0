// raid0 (SPDK's bdev_raid, level 0): strips of strip_size_kb laid round-robin over the base
// bdevs. READ/WRITE are split at strip boundaries; FLUSH and RESET go to every base; UNMAP and
// WRITE_ZEROES become one contiguous range per base; block status asks each base once for its
// contiguous range and interleaves the answers strip by strip.
import { constants } from 'node:os';
import { InvalidBdevError } from '../../errors.js';
import { Bdev, driverOf } from '../../bdev/bdev.js';
import { blockStatus, pushExtent } from '../../bdev/block_status.js';
import { PassThrough } from '../../bdev/child_io.js';
import { ALL_IO_FLAGS, IoType, type BdevDriver, type BdevIo, type BlockExtent, type ConfigEntry } from '../../bdev/types.js';

const E = constants.errno;
/** Strips one block status answer walks at most; the client asks again for the rest. */
const STATUS_STRIPS = 65536;

export interface Raid0Options {
  name: string;
  stripSizeKb: number;
  uuid?: string | undefined;
}

class Raid0Driver implements BdevDriver {
  readonly module = 'raid';
  readonly #children = new PassThrough();

  /** What every base honours: each child goes to one of them with its parent's flags. */
  readonly ioFlags: number;

  /** @param usable bytes used on each base (the smallest base, rounded down to a strip) */
  constructor(
    readonly bases: Bdev[],
    readonly strip: number,
    readonly usable: number,
  ) {
    this.ioFlags = bases.reduce((f, b) => f & b.ioFlags, ALL_IO_FLAGS);
  }

  supports(type: IoType): boolean {
    if (type === IoType.Read || type === IoType.Write) return true;
    if (type === IoType.Flush || type === IoType.Unmap || type === IoType.WriteZeroes || type === IoType.Reset) {
      return this.bases.every((b) => b.supports(type));
    }
    return false;
  }

  submit(io: BdevIo): void {
    switch (io.type) {
      case IoType.Read:
      case IoType.Write:
        this.#rw(io);
        return;
      case IoType.Flush:
      case IoType.Reset:
        this.#everyBase(io);
        return;
      case IoType.Unmap:
      case IoType.WriteZeroes:
        this.#ranges(io);
        return;
      default:
        io.complete(-E.ENOTSUP);
    }
  }

  #rw(io: BdevIo): void {
    const s = this.strip,
      n = this.bases.length;
    const first = Math.floor(io.offset / s),
      last = Math.floor((io.offset + io.length - 1) / s);
    const t = this.#children.fanOut(io, last - first + 1);
    let pos = 0;
    for (let k = first; k <= last; k++) {
      const inStrip = k === first ? io.offset % s : 0;
      const len = Math.min(s - inStrip, io.length - pos);
      const base = this.bases[k % n] as Bdev;
      // A child that covers the whole parent shares its buffer; others get a view into it.
      const buf = io.buf === null ? null : first === last ? io.buf : io.buf.subarray(pos, pos + len);
      this.#children.piece(t, base, io.type, Math.floor(k / n) * s + inStrip, len, buf);
      pos += len;
    }
  }

  #everyBase(io: BdevIo): void {
    const t = this.#children.fanOut(io, this.bases.length);
    for (const b of this.bases) this.#children.piece(t, b, io.type, 0, 0, null);
  }

  /** [base index, offset on it, length] of each base a raid range touches: contiguous on each. */
  #spans(a: number, end: number): [number, number, number][] {
    const s = this.strip,
      n = this.bases.length;
    const sa = Math.floor(a / s),
      sb = Math.floor((end - 1) / s);
    const spans: [number, number, number][] = [];
    for (let i = 0; i < n; i++) {
      const k1 = sa + ((i - (sa % n) + n) % n);
      if (k1 > sb) continue;
      const kl = sb - (((sb % n) - i + n) % n);
      const from = Math.floor(k1 / n) * s + (k1 === sa ? a % s : 0);
      const to = Math.floor(kl / n) * s + (kl === sb ? ((end - 1) % s) + 1 : s);
      spans.push([i, from, to - from]);
    }
    return spans;
  }

  #ranges(io: BdevIo): void {
    const spans = this.#spans(io.offset, io.offset + io.length);
    const t = this.#children.fanOut(io, spans.length);
    for (const [i, from, len] of spans) this.#children.piece(t, this.bases[i] as Bdev, io.type, from, len, null);
  }

  async blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    const s = this.strip,
      n = this.bases.length;
    // At most STATUS_STRIPS strips per answer, so a huge range costs a bounded walk.
    const end = Math.min(offset + length, (Math.floor(offset / s) + STATUS_STRIPS) * s);
    const spans = this.#spans(offset, end);
    const answers: BlockExtent[][] = Array.from({ length: n }, () => []);
    await Promise.all(
      spans.map(async ([i, from, len]) => {
        answers[i] = await blockStatus(this.bases[i] as Bdev, from, len);
      }),
    );
    // Each base's strips come in order, so one cursor per base walks its answer.
    const at = new Array<number>(n).fill(0),
      used = new Array<number>(n).fill(0);
    const out: BlockExtent[] = [];
    for (let pos = offset; pos < end; ) {
      const i = Math.floor(pos / s) % n;
      let want = Math.min(s - (pos % s), end - pos);
      const list = answers[i] as BlockExtent[];
      while (want > 0) {
        const e = list[at[i] as number];
        if (e === undefined) return out; // that base answered less: the rest next time
        const take = Math.min(want, e.length - (used[i] as number));
        pushExtent(out, take, e.flags, e.depth);
        want -= take;
        pos += take;
        used[i] = (used[i] as number) + take;
        if (used[i] === e.length) {
          at[i] = (at[i] as number) + 1;
          used[i] = 0;
        }
      }
    }
    return out;
  }

  info(): Record<string, unknown> {
    return { raid: this.describe(null) };
  }

  /** One bdev_raid_get_bdevs entry (SPDK's fields, without its duplicated "uuid" key). */
  describe(b: Bdev | null): Record<string, unknown> {
    const bs = this.bases[0]?.blockSize ?? 512;
    return {
      ...(b === null ? {} : { name: b.name, uuid: b.uuid }),
      strip_size_kb: this.strip / 1024,
      state: 'online',
      raid_level: 'raid0',
      superblock: false,
      num_base_bdevs: this.bases.length,
      num_base_bdevs_discovered: this.bases.length,
      num_base_bdevs_operational: this.bases.length,
      base_bdevs_list: this.bases.map((x) => ({
        name: x.name,
        uuid: x.uuid,
        is_configured: true,
        data_offset: 0,
        data_size: this.usable / bs,
      })),
    };
  }

  config(b: Bdev): ConfigEntry {
    return {
      method: 'bdev_raid_create',
      params: {
        name: b.name,
        raid_level: 'raid0',
        strip_size_kb: this.strip / 1024,
        base_bdevs: this.bases.map((x) => x.name),
        uuid: b.uuid,
        superblock: false,
      },
    };
  }

  destruct(): Promise<void> {
    return Promise.resolve();
  }
}

/** Accepts SPDK's spellings of raid level 0. */
export function isRaid0Level(level: string): boolean {
  return level === 'raid0' || level === '0';
}

/** The caller registers it with a claim on every base. */
export function createRaid0Bdev(bases: Bdev[], opts: Raid0Options): Bdev {
  if (bases.length === 0) throw new InvalidBdevError('raid0 needs at least one base bdev');
  const bs = (bases[0] as Bdev).blockSize;
  if (bases.some((b) => b.blockSize !== bs)) throw new InvalidBdevError('the base bdevs of a raid must have the same block size');
  const kb = opts.stripSizeKb;
  const strip = kb * 1024;
  if (!Number.isInteger(kb) || kb <= 0 || (kb & (kb - 1)) !== 0) throw new InvalidBdevError(`strip size ${kb} KiB must be a power of two`);
  if (strip < bs) throw new InvalidBdevError(`strip size ${kb} KiB is smaller than the ${bs}-byte block size`);
  const usable = Math.floor(Math.min(...bases.map((b) => b.sizeBytes)) / strip) * strip;
  if (usable === 0) throw new InvalidBdevError(`the smallest base bdev holds no whole ${kb} KiB strip`);
  const driver = new Raid0Driver([...bases], strip, usable);
  return new Bdev(
    {
      name: opts.name,
      blockSize: bs,
      numBlocks: (usable / bs) * bases.length,
      readonly: bases.some((b) => b.readonly),
      uuid: opts.uuid,
      writeCache: false,
      optimalIoBoundary: strip,
    },
    driver,
  );
}

export function describeRaid(b: Bdev): Record<string, unknown> {
  return driverOf(b, Raid0Driver, 'raid').describe(b);
}
