// Giving back the heap a burst of connections leaves behind. V8 grows its heap (the young
// generation above all) while thousands of connections open, and an idle server does not collect
// again on its own: without a nudge the RSS stays where the burst left it. So what goes away is
// counted (an estimate of the heap it leaves), and once enough has gone and nothing more has gone
// for a moment, V8 is told that memory is wanted back: one incremental, memory-reducing
// collection per burst, not per connection.
import { native } from '../native.js';

/** Estimated heap one closed connection leaves (its transmission, transport, logger, socket). */
export const CONNECTION_HEAP_BYTES = 16 * 1024;
/** Estimated heap of one request slot with its buffers and bound callbacks. */
export const SLOT_HEAP_BYTES = 1024;
/** Garbage worth a collection of its own (about 256 connections). */
const SETTLE_MIN_BYTES = 4 * 1024 * 1024;
/** The burst is over once nothing more has gone for this long. */
export const SETTLE_QUIET_MS = 1000;

/** How long after the collection starts the C heap is trimmed. */
const TRIM_AFTER_MS = 2000;

let pending = 0;
let lastNote = 0;
let timer: NodeJS.Timeout | null = null;

/** About `bytes` of heap became garbage (connections closed, slots dropped). */
export function noteGarbage(bytes: number): void {
  pending += bytes;
  lastNote = performance.now();
  if (pending >= SETTLE_MIN_BYTES && timer === null) arm(SETTLE_QUIET_MS);
}

function arm(ms: number): void {
  timer = setTimeout(settle, ms);
  timer.unref();
}

function settle(): void {
  timer = null;
  const quiet = performance.now() - lastNote;
  if (quiet < SETTLE_QUIET_MS) {
    arm(SETTLE_QUIET_MS - quiet);
    return;
  }
  pending = 0;
  native().reduceHeap();
  // What the collection finalises (sockets, TLS sessions) is freed into the C heap over the next
  // moments; its pages go back to the system once that is done.
  setTimeout(() => {
    native().trimMalloc();
  }, TRIM_AFTER_MS).unref();
}
