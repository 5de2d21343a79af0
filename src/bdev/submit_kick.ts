// When queued device submissions go out. A module that batches its submissions (the AIO queue)
// registers here when its batch starts; the batch goes out when the submitter says that what it
// has parsed so far is complete (kickSubmissions(), called by the NBD layer after each socket
// read), or at the latest in a microtask at the end of the current macrotask, for submitters that
// never kick. So a parsed request never waits for the next socket read, and the requests of one
// read still share one system call.

/** A batching submitter: sends what it has queued. */
export interface QueuedSubmitter {
  submitQueued(): void;
}

// Reused, never shrunk: registering allocates nothing once it has grown to the number of queues.
const pending: (QueuedSubmitter | null)[] = [];
let count = 0;
let microtaskScheduled = false;
let running = false;

/** `q` has started a batch: it is submitted at the next kick, or in a microtask. */
export function queueSubmission(q: QueuedSubmitter): void {
  pending[count++] = q;
  if (!microtaskScheduled) {
    microtaskScheduled = true;
    queueMicrotask(runScheduled);
  }
}

/** Submits every batch started so far. Cheap when nothing is queued. */
export function kickSubmissions(): void {
  // A submitter's completion path may start another batch, or kick, meanwhile: the batch is
  // appended and run by this loop; the nested kick has nothing to do.
  if (running) return;
  running = true;
  try {
    for (let i = 0; i < count; i++) {
      const q = pending[i] as QueuedSubmitter;
      pending[i] = null;
      q.submitQueued();
    }
  } finally {
    count = 0;
    running = false;
  }
}

function runScheduled(): void {
  microtaskScheduled = false;
  kickSubmissions();
}
