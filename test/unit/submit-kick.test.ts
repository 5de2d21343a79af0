// The bdev layer's submission kick: every batch started is submitted exactly once, whether a
// kick or the microtask fallback sends it, and also when a submitter starts another batch (or
// kicks again) from inside its own submission.
import { describe, expect, it } from 'vitest';
import { kickSubmissions, queueSubmission, type QueuedSubmitter } from '../../src/bdev/submit_kick.js';

class Counting implements QueuedSubmitter {
  sent = 0;
  constructor(private readonly then: (() => void) | null = null) {}
  submitQueued(): void {
    this.sent++;
    this.then?.();
  }
}

describe('submission kick', () => {
  it('submits at the kick, before the microtask, and only once', async () => {
    const a = new Counting();
    queueSubmission(a);
    expect(a.sent).toBe(0);
    kickSubmissions();
    expect(a.sent).toBe(1);
    await Promise.resolve();
    expect(a.sent).toBe(1);
  });

  it('falls back to a microtask for submitters nobody kicks', async () => {
    const a = new Counting();
    queueSubmission(a);
    await Promise.resolve();
    expect(a.sent).toBe(1);
  });

  it('runs batches started, and kicks made, from inside a submission', async () => {
    const c = new Counting();
    const b = new Counting(() => {
      queueSubmission(c);
      kickSubmissions();
    });
    const a = new Counting(() => {
      queueSubmission(b);
      kickSubmissions();
    });
    queueSubmission(a);
    kickSubmissions();
    expect([a.sent, b.sent, c.sent]).toEqual([1, 1, 1]);
    const d = new Counting();
    queueSubmission(d); // the registry is usable again afterwards
    kickSubmissions();
    expect(d.sent).toBe(1);
    await Promise.resolve();
    expect([a.sent, b.sent, c.sent, d.sent]).toEqual([1, 1, 1, 1]);
  });
});
