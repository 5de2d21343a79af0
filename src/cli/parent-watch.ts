// --exit-with-parent: stop when the process that started us exits, as nbdkit's option does.
//
// nbdkit asks the kernel (prctl PR_SET_PDEATHSIG), which Node cannot do without native code; we
// poll getppid() instead (process.ppid is read afresh each time). Polling is also the sounder
// test: PDEATHSIG fires when the parent *thread* that forked us ends, which kills children of
// multi-threaded parents (a Node program spawning from a worker, a Go program) while the parent
// lives on. When the parent exits we are re-parented (to init or a subreaper) and the pid changes.

/** Calls `onExit` once, within `intervalMs`, after the parent exits; returns a function that stops watching. */
export function watchParent(onExit: () => void, intervalMs = 500): () => void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onExit();
  }, intervalMs);
  timer.unref(); // the watch alone never keeps the process alive
  return () => {
    clearInterval(timer);
  };
}
