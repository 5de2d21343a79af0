// The memory budget and the buffer pool, in isolation: admission, fairness, wake-up order,
// progress for a connection that holds nothing, and trimming of idle pool memory.
import { describe, expect, it } from 'vitest';
import { BufferPool, IO_CHUNK } from '../../src/bdev/buffers.js';
import { DEFAULT_MEMORY_BUDGET, ioCharge, MemoryBudget, MIN_MEMORY_BUDGET } from '../../src/nbd/budget.js';
import { DEFAULT_MAX_PAYLOAD } from '../../src/nbd/constants.js';
import { UsageError } from '../../src/errors.js';

const MiB = 1 << 20;
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('MemoryBudget', () => {
  it('refuses a budget too small to hold a piece per connection', () => {
    expect(() => new MemoryBudget(MIN_MEMORY_BUDGET - 1)).toThrow(UsageError);
  });

  it('admits up to the total, then makes the connection wait until memory comes back', async () => {
    const b = new MemoryBudget(16 * MiB);
    let ready = 0;
    const a = b.account(() => {
      ready++;
    });
    for (let i = 0; i < 8; i++) expect(a.take(2 * MiB)).toBe(true);
    expect(b.used).toBe(16 * MiB);
    expect(a.take(2 * MiB)).toBe(false);
    expect(a.take(2 * MiB)).toBe(false); // asking again does not queue twice
    expect(b.waiting).toBe(1);
    a.release(2 * MiB);
    await tick();
    expect(ready).toBe(1);
    // The reservation pays for the retried request: the total is never exceeded.
    expect(b.used).toBe(16 * MiB);
    expect(a.take(2 * MiB)).toBe(true);
    expect(b.used).toBe(16 * MiB);
    a.close();
    expect(b.used).toBe(0);
  });

  it('a connection that holds nothing is always admitted, so a stalled one cannot starve it', () => {
    const b = new MemoryBudget(16 * MiB);
    const hog = b.account(() => undefined);
    while (hog.take(2 * MiB)) {
      /* fill its share and the total */
    }
    const fresh = b.account(() => undefined);
    expect(fresh.take(4096)).toBe(true);
    // ...but only one request's worth beyond its fair share while others hold the rest.
    expect(fresh.take(2 * MiB)).toBe(false);
  });

  it('shares fairly: one busy connection cannot take what a second one needs', () => {
    const b = new MemoryBudget(16 * MiB);
    const x = b.account(() => undefined);
    const y = b.account(() => undefined);
    expect(x.take(MiB)).toBe(true);
    expect(y.take(MiB)).toBe(true);
    let xs = 1;
    while (x.take(MiB)) xs++;
    expect(xs).toBe(8); // half of 16 MiB with two active accounts
    let ys = 1;
    while (y.take(MiB)) ys++;
    expect(ys).toBe(8);
  });

  it('wakes waiters in arrival order; one held back by the total is not overtaken', async () => {
    const b = new MemoryBudget(16 * MiB);
    const order: string[] = [];
    const h = b.account(() => order.push('h'));
    const p = b.account(() => order.push('p'));
    const q = b.account(() => order.push('q'));
    for (let i = 0; i < 4; i++) expect(h.take(4 * MiB)).toBe(true); // alone: the whole total
    expect(p.take(MiB)).toBe(true); // hold nothing: admitted
    expect(q.take(MiB)).toBe(true);
    expect(p.take(2 * MiB)).toBe(false); // waits first
    expect(q.take(MiB)).toBe(false); // waits behind p, though smaller
    h.release(2 * MiB); // 16 MiB used: neither fits; q must not jump ahead of p
    await tick();
    expect(order).toEqual([]);
    h.release(2 * MiB); // room for p only
    await tick();
    expect(order).toEqual(['p']);
    h.release(4 * MiB);
    await tick();
    expect(order).toEqual(['p', 'q']);
  });

  it('a waiter whose own memory all came back is admitted even past a blocked head', async () => {
    const b = new MemoryBudget(16 * MiB);
    const order: string[] = [];
    const hog = b.account(() => order.push('hog'));
    const w = b.account(() => order.push('w'));
    while (hog.take(2 * MiB)) {
      /* up to its share */
    }
    expect(w.take(2 * MiB)).toBe(true);
    expect(hog.take(2 * MiB)).toBe(false); // blocked by the total
    expect(w.take(2 * MiB)).toBe(false); // queued behind it
    w.release(2 * MiB); // w now holds nothing
    await tick();
    expect(order).toContain('w');
    hog.close();
    w.close();
    expect(b.used).toBe(0);
  });

  it('closing an account gives back what it held and reserved, and leaves the queue', async () => {
    const b = new MemoryBudget(16 * MiB);
    const a = b.account(() => undefined);
    const c = b.account(() => undefined);
    for (let i = 0; i < 8; i++) expect(a.take(2 * MiB)).toBe(true);
    expect(c.take(2 * MiB)).toBe(true);
    expect(c.take(2 * MiB)).toBe(false);
    c.close();
    expect(b.waiting).toBe(0);
    a.close();
    expect(b.used).toBe(0);
  });

  it('a request of the default maximum payload costs one piece (two unaligned) and fits the default budget', () => {
    expect(DEFAULT_MAX_PAYLOAD).toBe(64 * MiB);
    expect(ioCharge(0, DEFAULT_MAX_PAYLOAD, 4096)).toBe(IO_CHUNK);
    expect(ioCharge(1, DEFAULT_MAX_PAYLOAD, 512)).toBe(2 * IO_CHUNK);
    expect(ioCharge(0, 4096, 4096)).toBe(4096);
    const b = new MemoryBudget(DEFAULT_MEMORY_BUDGET);
    // As many connections as the budget has unaligned maximum requests: every one is admitted.
    const n = DEFAULT_MEMORY_BUDGET / (2 * IO_CHUNK);
    const accounts = Array.from({ length: n }, () => b.account(() => undefined));
    for (const a of accounts) expect(a.take(ioCharge(512, DEFAULT_MAX_PAYLOAD, 4096))).toBe(true);
    expect(b.used).toBe(DEFAULT_MEMORY_BUDGET);
    // One more still gets in (it holds nothing), so a 64 MiB request never waits forever.
    expect(b.account(() => undefined).take(ioCharge(0, DEFAULT_MAX_PAYLOAD, 4096))).toBe(true);
    for (const a of accounts) a.close();
  });
});

describe('BufferPool', () => {
  it('hands out power-of-two classes and charges their size', () => {
    const pool = new BufferPool(50);
    expect(BufferPool.sizeFor(1)).toBe(4096);
    expect(BufferPool.sizeFor(IO_CHUNK)).toBe(IO_CHUNK);
    expect(BufferPool.sizeFor(IO_CHUNK + 1)).toBe(2 * IO_CHUNK);
    const b = pool.get(5000);
    expect(b.length).toBe(8192);
    pool.put(b);
    expect(pool.get(8000)).toBe(b); // reused
  });

  it('frees idle free buffers down to a small floor, and the memory really goes', async () => {
    const pool = new BufferPool(100);
    const bufs = Array.from({ length: 16 }, () => pool.get(IO_CHUNK));
    for (const b of bufs) b.fill(1);
    for (const b of bufs) pool.put(b);
    expect(pool.heldBytes()).toBe(16 * IO_CHUNK);
    const deadline = Date.now() + 3000;
    while (pool.heldBytes() > MiB && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(pool.heldBytes()).toBeLessThanOrEqual(MiB);
    // Freed at once, not at the next collection: the Buffers read as empty now.
    expect(bufs.filter((b) => b.length === 0).length).toBe(16);
    // Small classes keep a floor for a warm restart.
    const small = Array.from({ length: 8 }, () => pool.get(4096));
    for (const b of small) pool.put(b);
    pool.trim(performance.now() + 1000);
    expect(pool.held()).toBe(8);
  });
});
