// Leak checks by garbage collection: whether objects a test let go of can actually be freed.
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Runs full GCs (bounded: 20 rounds) until every ref is cleared; returns how many are still alive. */
export async function aliveAfterGc(refs: WeakRef<object>[]): Promise<number> {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  for (let i = 0; i < 20 && refs.some((r) => r.deref() !== undefined); i++) {
    // WeakRefs are cleared only after the job that last read them: yield between rounds.
    await new Promise((r) => setTimeout(r, 20));
    gc();
  }
  return refs.filter((r) => r.deref() !== undefined).length;
}
