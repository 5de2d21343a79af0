// Request slots a connection made for a burst are dropped once it has been idle for a while, so
// a connection that was busy once costs about as little as a fresh one. One unref'd timer serves
// every connection of the process, and it runs only while some connection has slots to drop.

/** A connection with more free slots than it keeps when idle. */
export interface IdleTrimmable {
  /** Drops its spare slots if it has been idle long enough at `now`; true when it needs no more visits. */
  trimIdleSlots(now: number): boolean;
}

/** Idle this long (no request in flight, no byte received), a connection drops its spare slots. */
export const SLOT_IDLE_MS = 2000;

const waiting = new Set<IdleTrimmable>();
let timer: NodeJS.Timeout | null = null;

/** Visits `c` every SLOT_IDLE_MS until its trimIdleSlots() says it is done. */
export function trimWhenIdle(c: IdleTrimmable): void {
  waiting.add(c);
  if (timer === null) arm();
}

function arm(): void {
  timer = setTimeout(visit, SLOT_IDLE_MS);
  timer.unref();
}

function visit(): void {
  timer = null;
  const now = performance.now();
  for (const c of waiting) if (c.trimIdleSlots(now)) waiting.delete(c);
  if (waiting.size > 0) arm();
}
