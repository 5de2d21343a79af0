// The delay bdev (SPDK's vbdev_delay): a pass-through that holds each READ and WRITE
// completion back by an average latency, or one time in a hundred by a p99 latency, to see
// how a client behaves on a slow disk. Other I/O types pass undelayed.
import { performance } from 'node:perf_hooks';
import { InvalidBdevError } from '../../errors.js';
import { Ring } from '../../util/ring.js';
import { Bdev, driverOf } from '../../bdev/bdev.js';
import type { ChildIo } from '../../bdev/child_io.js';
import { PassThroughDriver } from '../../bdev/passthrough.js';
import { IoType, type BdevIo, type ConfigEntry } from '../../bdev/types.js';

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

const NONE = 0,
  AVG_READ = 1,
  P99_READ = 2,
  AVG_WRITE = 3,
  P99_WRITE = 4;

class DelayDriver extends PassThroughDriver {
  readonly module = 'delay';
  /**
   * Finished children waiting for their deadline (in their tag), indexed by kind
   * (AVG_READ..P99_WRITE; [0] unused). One FIFO per kind: deadlines only grow within one.
   */
  readonly #held = [new Ring<ChildIo>(), new Ring<ChildIo>(), new Ring<ChildIo>(), new Ring<ChildIo>(), new Ring<ChildIo>()];
  /** Microseconds, indexed like the FIFOs. */
  readonly us = [0, 0, 0, 0, 0];
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Infinity;

  constructor(base: Bdev, l: DelayLatencies) {
    super(base, { followResize: true });
    this.us[AVG_READ] = l.avgReadLatency;
    this.us[P99_READ] = l.p99ReadLatency;
    this.us[AVG_WRITE] = l.avgWriteLatency;
    this.us[P99_WRITE] = l.p99WriteLatency;
  }

  override submit(io: BdevIo): void {
    // The p99 choice is made now, as SPDK does; the latency applies after the base answers.
    const p99 = Math.random() < 0.01;
    const kind = io.type === IoType.Read ? (p99 ? P99_READ : AVG_READ) : io.type === IoType.Write ? (p99 ? P99_WRITE : AVG_WRITE) : NONE;
    this.children.forward(io, this.base, 0, kind);
  }

  // The base answered: the answer is held until the deadline, then settled by #fire.
  protected override childDone(c: ChildIo): boolean {
    const kind = c.tag;
    const us = this.us[kind] ?? 0;
    if (kind === NONE || us <= 0) return true;
    const deadline = performance.now() + us / 1000;
    c.tag = deadline;
    (this.#held[kind] as Ring<ChildIo>).push(c);
    if (deadline < this.#timerAt) this.#arm(deadline);
    return false;
  }

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
      const f = this.#held[k] as Ring<ChildIo>;
      while (f.length > 0 && f.peek().tag <= now) this.children.settle(f.shift());
      if (f.length > 0) next = Math.min(next, f.peek().tag);
    }
    if (next !== Infinity) this.#arm(next);
  };

  info(): Record<string, unknown> {
    return {
      delay: {
        base_bdev_name: this.base.name,
        avg_read_latency: this.us[AVG_READ],
        p99_read_latency: this.us[P99_READ],
        avg_write_latency: this.us[AVG_WRITE],
        p99_write_latency: this.us[P99_WRITE],
      },
    };
  }

  config(b: Bdev): ConfigEntry {
    return {
      method: 'bdev_delay_create',
      params: {
        name: b.name,
        base_bdev_name: this.base.name,
        avg_read_latency: this.us[AVG_READ],
        p99_read_latency: this.us[P99_READ],
        avg_write_latency: this.us[AVG_WRITE],
        p99_write_latency: this.us[P99_WRITE],
        uuid: b.uuid,
      },
    };
  }

  // Called after the last completion, so nothing is held and the timer is idle.
  override destruct(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    return super.destruct();
  }
}

function checkUs(what: string, us: number): void {
  if (!Number.isSafeInteger(us) || us < 0) throw new InvalidBdevError(`${what} ${us} must be a whole number of microseconds >= 0`);
}

/** The caller registers it with a claim on base. */
export function createDelayBdev(base: Bdev, opts: DelayBdevOptions): Bdev {
  checkUs('avg_read_latency', opts.avgReadLatency);
  checkUs('p99_read_latency', opts.p99ReadLatency);
  checkUs('avg_write_latency', opts.avgWriteLatency);
  checkUs('p99_write_latency', opts.p99WriteLatency);
  if (opts.p99ReadLatency < opts.avgReadLatency || opts.p99WriteLatency < opts.avgWriteLatency) {
    throw new InvalidBdevError('p99 latencies must not be below the average ones');
  }
  return new Bdev(
    {
      name: opts.name,
      blockSize: base.blockSize,
      numBlocks: base.numBlocks,
      readonly: base.readonly,
      uuid: opts.uuid,
      writeCache: base.writeCache,
    },
    new DelayDriver(base, opts),
  );
}

/** Changes one latency for I/O submitted from now on (SPDK does not re-check p99 >= avg here). */
export function updateDelayLatency(b: Bdev, type: LatencyType, us: number): void {
  const d = driverOf(b, DelayDriver, 'delay');
  checkUs('latency_us', us);
  const kind = { avg_read: AVG_READ, p99_read: P99_READ, avg_write: AVG_WRITE, p99_write: P99_WRITE }[type];
  d.us[kind] = us;
}
