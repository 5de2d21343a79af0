// The delay bdev (SPDK's vbdev_delay): a pass-through that holds each READ and WRITE
// completion back by an average latency, or one time in a hundred by a p99 latency, to see
// how a client behaves on a slow disk. Other I/O types pass undelayed.
import { performance } from 'node:perf_hooks';
import { BdevWrongModuleError, InvalidBdevError } from '../errors.js';
import { Bdev } from './bdev.js';
import { blockStatus, knowsDepth } from './block_status.js';
import { ChildPool, type ChildIo } from './child_io.js';
import { IoType, type BdevDriver, type BdevIo, type BlockExtent, type ConfigEntry } from './types.js';

/** Latencies in microseconds, as SPDK's RPC takes them. */
export interface DelayLatencies {
  avgReadLatency: number;
  p99ReadLatency: number;
  avgWriteLatency: number;
  p99WriteLatency: number;
}

export type LatencyType = 'avg_read' | 'p99_read' | 'avg_write' | 'p99_write';

export interface DelayBdevOptions extends DelayLatencies {
  name: string;
  uuid?: string | undefined;
}

const NONE = 0, AVG_READ = 1, P99_READ = 2, AVG_WRITE = 3, P99_WRITE = 4;

/** Completions waiting for their deadline. One FIFO per latency kind: deadlines only grow within one. */
class Fifo {
  ios: (BdevIo | null)[] = new Array<BdevIo | null>(16).fill(null);
  deadline = new Float64Array(16);
  result = new Float64Array(16);
  head = 0;
  len = 0;

  push(io: BdevIo, deadline: number, result: number): void {
    if (this.len === this.ios.length) this.#grow();
    const i = (this.head + this.len) % this.ios.length;
    this.ios[i] = io; this.deadline[i] = deadline; this.result[i] = result;
    this.len++;
  }

  #grow(): void {
    const n = this.ios.length * 2;
    const ios = new Array<BdevIo | null>(n).fill(null), dl = new Float64Array(n), res = new Float64Array(n);
    for (let k = 0; k < this.len; k++) {
      const i = (this.head + k) % this.ios.length;
      ios[k] = this.ios[i] ?? null; dl[k] = this.deadline[i] as number; res[k] = this.result[i] as number;
    }
    this.ios = ios; this.deadline = dl; this.result = res; this.head = 0;
  }

  headDeadline(): number { return this.len === 0 ? Infinity : this.deadline[this.head] as number; }

  /** Completes every entry due by `now`. */
  drain(now: number): void {
    while (this.len > 0 && (this.deadline[this.head] as number) <= now) {
      const io = this.ios[this.head] as BdevIo, r = this.result[this.head] as number;
      this.ios[this.head] = null;
      this.head = (this.head + 1) % this.ios.length;
      this.len--;
      io.complete(r);
    }
  }
}

class DelayDriver implements BdevDriver {
  readonly module = 'delay';
  readonly #children = new ChildPool((c) => this.#childDone(c));
  /** Indexed by kind (AVG_READ..P99_WRITE); [0] unused. */
  readonly #fifos = [new Fifo(), new Fifo(), new Fifo(), new Fifo(), new Fifo()];
  /** Microseconds, indexed like the FIFOs. */
  readonly us = [0, 0, 0, 0, 0];
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Infinity;
  unsubscribe: () => void = () => undefined;

  readonly ioFlags: number;

  constructor(readonly base: Bdev, l: DelayLatencies) {
    this.ioFlags = base.ioFlags;
    this.us[AVG_READ] = l.avgReadLatency; this.us[P99_READ] = l.p99ReadLatency;
    this.us[AVG_WRITE] = l.avgWriteLatency; this.us[P99_WRITE] = l.p99WriteLatency;
  }

  supports(type: IoType): boolean { return this.base.supports(type); }

  submit(io: BdevIo): void {
    const c = this.#children.copyOf(io, 0);
    // The p99 choice is made now, as SPDK does; the latency applies after the base answers.
    const p99 = Math.random() < 0.01;
    c.tag = io.type === IoType.Read ? (p99 ? P99_READ : AVG_READ) : io.type === IoType.Write ? (p99 ? P99_WRITE : AVG_WRITE) : NONE;
    this.base.submit(c);
  }

  #childDone(c: ChildIo): void {
    const parent = c.parent as BdevIo, kind = c.tag, result = c.result;
    this.#children.put(c);
    const us = this.us[kind] ?? 0;
    if (kind === NONE || us <= 0) { parent.complete(result); return; }
    const deadline = performance.now() + us / 1000;
    (this.#fifos[kind] as Fifo).push(parent, deadline, result);
    if (deadline < this.#timerAt) this.#arm(deadline);
  }

  // Latencies are for READ and WRITE; block status is the base's, undelayed.
  blockStatus(offset: number, length: number): Promise<BlockExtent[]> { return blockStatus(this.base, offset, length); }
  knowsDepth(): boolean { return knowsDepth(this.base); }

  #arm(at: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#fire, Math.max(0, at - performance.now()));
  }

  readonly #fire = (): void => {
    this.#timer = null;
    this.#timerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (let k = AVG_READ; k <= P99_WRITE; k++) {
      const f = this.#fifos[k] as Fifo;
      f.drain(now);
      next = Math.min(next, f.headDeadline());
    }
    if (next !== Infinity) this.#arm(next);
  };

  info(): Record<string, unknown> {
    return {
      delay: {
        base_bdev_name: this.base.name,
        avg_read_latency: this.us[AVG_READ], p99_read_latency: this.us[P99_READ],
        avg_write_latency: this.us[AVG_WRITE], p99_write_latency: this.us[P99_WRITE],
      },
    };
  }

  config(b: Bdev): ConfigEntry {
    return {
      method: 'bdev_delay_create',
      params: {
        name: b.name, base_bdev_name: this.base.name,
        avg_read_latency: this.us[AVG_READ], p99_read_latency: this.us[P99_READ],
        avg_write_latency: this.us[AVG_WRITE], p99_write_latency: this.us[P99_WRITE], uuid: b.uuid,
      },
    };
  }

  // Called after the last completion, so no FIFO holds anything and the timer is idle.
  destruct(): Promise<void> {
    this.unsubscribe();
    if (this.#timer !== null) clearTimeout(this.#timer);
    return Promise.resolve();
  }
}

function checkUs(what: string, us: number): void {
  if (!Number.isSafeInteger(us) || us < 0) throw new InvalidBdevError(`${what} ${us} must be a whole number of microseconds >= 0`);
}

/** The caller registers it with a claim on base. */
export function createDelayBdev(base: Bdev, opts: DelayBdevOptions): Bdev {
  checkUs('avg_read_latency', opts.avgReadLatency); checkUs('p99_read_latency', opts.p99ReadLatency);
  checkUs('avg_write_latency', opts.avgWriteLatency); checkUs('p99_write_latency', opts.p99WriteLatency);
  if (opts.p99ReadLatency < opts.avgReadLatency || opts.p99WriteLatency < opts.avgWriteLatency) {
    throw new InvalidBdevError('p99 latencies must not be below the average ones');
  }
  const driver = new DelayDriver(base, opts);
  const b = new Bdev({
    name: opts.name, blockSize: base.blockSize, numBlocks: base.numBlocks, readonly: base.readonly,
    uuid: opts.uuid, writeCache: base.writeCache,
  }, driver);
  driver.unsubscribe = base.onResize(() => b.resize(base.numBlocks));
  return b;
}

/** Changes one latency for I/O submitted from now on (SPDK does not re-check p99 >= avg here). */
export function updateDelayLatency(b: Bdev, type: LatencyType, us: number): void {
  if (!(b.driver instanceof DelayDriver)) throw new BdevWrongModuleError(b.name, b.module, 'delay');
  checkUs('latency_us', us);
  const kind = { avg_read: AVG_READ, p99_read: P99_READ, avg_write: AVG_WRITE, p99_write: P99_WRITE }[type];
  b.driver.us[kind] = us;
}
