// The one pass-through helper of virtual bdevs: child I/Os to their bases. A child comes from a
// pool (made once, then reused, so passing I/O down allocates nothing once warm), carries its
// parent's flags word whole, and its completion goes to its parent: alone (error, delay, split),
// or as one piece of a fan-out that completes the parent once, with the first error (raid0,
// lvol). A module may look at each finished child first, and hold it (delay) or change what the
// parent sees (error).
import type { Bdev } from './bdev.js';
import { BdevIo, IoType } from './types.js';

export class ChildIo extends BdevIo {
  /** The I/O this child works for, while in use. */
  parent: BdevIo | null = null;
  /** The fan-out this child is a piece of, or -1 when it answers for its parent alone. */
  task = -1;
  /** Module scratch (error: the corruption to apply; delay: the latency kind, then the deadline). */
  tag = 0;
}

/**
 * Looks at a finished child before its parent hears of it. True: the helper goes on (completes
 * the parent, or counts the piece) with child.result. False: the module keeps the child and
 * calls settle(child) itself, later.
 */
export type ChildHook = (child: ChildIo) => boolean;

/** A parent served by several children. Pooled by index: children carry it in `task`. */
interface Task {
  parent: BdevIo | null;
  remaining: number;
  result: number;
}

export class PassThrough {
  readonly #free: ChildIo[] = [];
  #made = 0;
  readonly #tasks: Task[] = [];
  readonly #freeTasks: number[] = [];
  /** Parents between forward()/fanOut() and their completion. */
  #inflight = 0;
  #onIdle: (() => void) | null = null;
  readonly #hook: ChildHook | null;
  // Every child shares this one callback: it is told which child finished.
  readonly #childDone = (io: BdevIo): void => {
    const c = io as ChildIo;
    if (this.#hook === null || this.#hook(c)) this.settle(c);
  };

  /** @param hook runs for each finished child (never inside the base's submit). */
  constructor(hook: ChildHook | null = null) {
    this.#hook = hook;
  }

  /** Children ever created: bounded by the peak number in flight (and held). */
  get made(): number {
    return this.#made;
  }
  /** Parents sent on and not completed yet. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Resolves once no parent is in flight (at once when none is). One waiter at a time. */
  idle(): Promise<void> {
    if (this.#inflight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onIdle = resolve;
    });
  }

  /**
   * Sends parent to base whole: its type, flags and buffer, its range shifted by `shift` bytes
   * (FLUSH and RESET carry no range and go as they are). `tag` is the module's, for its hook;
   * `buf` replaces the parent's buffer (error's corrupted copy of a WRITE).
   */
  forward(parent: BdevIo, base: Bdev, shift = 0, tag = 0, buf: Buffer | null = parent.buf): void {
    const c = this.#child(parent, -1);
    c.type = parent.type;
    const ranged = parent.type !== IoType.Flush && parent.type !== IoType.Reset;
    c.offset = ranged ? parent.offset + shift : 0;
    c.length = ranged ? parent.length : 0;
    c.buf = buf;
    c.tag = tag;
    this.#inflight++;
    base.submit(c);
  }

  /** Starts a fan-out: parent completes once `pieces` pieces are done, with the first error. */
  fanOut(parent: BdevIo, pieces: number): number {
    let t = this.#freeTasks.pop();
    if (t === undefined) {
      t = this.#tasks.length;
      this.#tasks.push({ parent: null, remaining: 0, result: 0 });
    }
    const task = this.#tasks[t] as Task;
    task.parent = parent;
    task.remaining = pieces;
    task.result = 0;
    this.#inflight++;
    return t;
  }

  /** One piece of fan-out `task`: a child on base with the parent's flags and this range. */
  piece(task: number, base: Bdev, type: IoType, offset: number, length: number, buf: Buffer | null): void {
    const c = this.#child((this.#tasks[task] as Task).parent as BdevIo, task);
    c.type = type;
    c.offset = offset;
    c.length = length;
    c.buf = buf;
    base.submit(c);
  }

  /** One piece of fan-out `task` is done without a child (zeroes read, nothing to do, or failed). */
  pieceDone(task: number, result: number): void {
    const t = this.#tasks[task] as Task;
    if (result < 0 && t.result === 0) t.result = result;
    if (--t.remaining > 0) return;
    const parent = t.parent as BdevIo;
    t.parent = null;
    this.#freeTasks.push(task);
    this.#parentDone(parent, t.result);
  }

  /** Takes a finished child back and goes on with its result (for a hook that held it). */
  settle(c: ChildIo): void {
    const parent = c.parent as BdevIo,
      task = c.task,
      result = c.result;
    c.parent = null;
    c.buf = null;
    this.#free.push(c);
    if (task >= 0) this.pieceDone(task, result);
    else this.#parentDone(parent, result);
  }

  #parentDone(parent: BdevIo, result: number): void {
    this.#inflight--;
    parent.complete(result);
    if (this.#inflight === 0 && this.#onIdle !== null) {
      const idle = this.#onIdle;
      this.#onIdle = null;
      idle();
    }
  }

  // A child carrying parent's flags word whole: no layer drops or rewrites one.
  #child(parent: BdevIo, task: number): ChildIo {
    let c = this.#free.pop();
    if (c === undefined) {
      c = new ChildIo(this.#childDone);
      this.#made++;
    }
    c.parent = parent;
    c.task = task;
    c.tag = 0;
    c.flags = parent.flags;
    return c;
  }
}
