// The numbers JS shares with the addon come from the addon (native/constants.cc), and the slot
// table views JS builds match the layout the native code computes.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAioBdev } from '../../src/modules/aio/aio.js';
import { InvalidBdevError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { FileOp, SockEvent, native, slotViews, type SlotColumn, type SlotViews } from '../../src/native.js';
import { REPO_ROOT, requireBuilt } from '../helpers/server.js';

const COLUMNS: readonly SlotColumn[] = ['op', 'rwFlags', 'len', 'fd', 'sq', 'cqSlot', 'offset', 'cqRes'];

describe('native constants', () => {
  it("FileOp and SockEvent are the addon's tables, name for name", () => {
    const k = native().constants;
    expect({ ...FileOp }).toEqual(k.fileOp);
    expect({ ...SockEvent }).toEqual(k.sockEvent);
    expect(Object.isFrozen(FileOp)).toBe(true);
    expect(new Set(Object.values(FileOp)).size).toBe(Object.keys(FileOp).length);
    // Bits, so that poll(mask) and onEvent(events) can carry several at once.
    const bits = Object.values(SockEvent);
    expect(bits.every((b) => b > 0 && (b & (b - 1)) === 0)).toBe(true);
    expect(bits.reduce((a, b) => a | b, 0)).toBe(bits.reduce((a, b) => a + b, 0));
  });

  it('loads the addon at the first read of FileOp, not at import', () => {
    requireBuilt();
    // A fresh process, as the CLI is: the addon shows in its memory map once loaded.
    const script = `
      const { readFileSync } = await import('node:fs');
      const loaded = () => readFileSync('/proc/self/maps', 'utf8').includes('aionbd.node');
      const m = await import(${JSON.stringify(path.join(REPO_ROOT, 'dist', 'native.js'))});
      const atImport = loaded();
      const code = m.FileOp.Fdatasync;
      process.stdout.write(JSON.stringify({ atImport, afterRead: loaded(), code }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(JSON.parse(out)).toEqual({ atImport: false, afterRead: true, code: native().constants.fileOp.Fdatasync });
  });

  it('has every group src/native.ts types, each of numbers', () => {
    const k = native().constants;
    expect(Object.keys(k).sort()).toEqual(['aio', 'fileOp', 'nbd', 'rbd', 'slot', 'sockEvent', 'uring']);
    for (const g of ['aio', 'fileOp', 'nbd', 'rbd', 'sockEvent', 'uring'] as const) {
      for (const v of Object.values(k[g])) expect(Number.isInteger(v) && v >= 0).toBe(true);
    }
    expect(Object.keys(k.aio).sort()).toEqual([
      'IOCB_CMD_FDSYNC',
      'IOCB_CMD_FSYNC',
      'IOCB_CMD_PREAD',
      'IOCB_CMD_PWRITE',
      'MAX_CONTEXT_EVENTS',
      'RWF_DSYNC',
    ]);
    expect(Object.keys(k.uring).sort()).toEqual(['FSYNC_DATASYNC', 'MAX_RING_ENTRIES', 'OP_FSYNC', 'OP_READ', 'OP_WRITE', 'RWF_DSYNC']);
    expect(Object.keys(k.rbd).sort()).toEqual(['DISCARD', 'FLUSH', 'FUA', 'NO_HOLE', 'READ', 'WRITE', 'WRITE_ZEROES']);
    expect(Object.keys(k.nbd).sort()).toEqual([
      'CFLAG_DESTROY_ON_DISCONNECT',
      'CFLAG_DISCONNECT_ON_CLOSE',
      'CMD_LINK_DEAD',
      'EVENTS_LOST',
      'NO_INDEX',
    ]);
    // EVENTS_LOST must be a cmd the kernel never multicasts, so never LINK_DEAD.
    expect(k.nbd.EVENTS_LOST).not.toBe(k.nbd.CMD_LINK_DEAD);
  });
});

describe('limits read from the addon', () => {
  it('refuses an AIO queue depth above what one kernel AIO context holds, before opening anything', () => {
    const max = native().constants.aio.MAX_CONTEXT_EVENTS;
    const create = (queueDepth: number): unknown =>
      createAioBdev({ filename: '/nonexistent/aionbd.img', name: 'q', queueDepth, log: silentLogger() });
    expect(() => create(max + 1)).toThrow(InvalidBdevError);
    expect(() => create(max + 1)).toThrow(`queue depth ${max + 1} is not in 1..${max}`);
    // The depth itself is accepted: what fails then is the missing file.
    expect(() => create(max)).toThrow(/nonexistent/);
    const engine = new (native().AioEngine)(1, [], () => undefined);
    try {
      expect(() => engine.grow(max + 1)).toThrow(`AIO context events must be 1..${max}`);
    } finally {
      engine.close();
    }
  });
});

describe('slot table layout', () => {
  const widths = native().constants.slot.columns;

  it('names the columns slotViews() views, in table order, with the element size of its views', () => {
    expect(Object.keys(widths)).toEqual(COLUMNS);
    const layout = native().slotLayout(4);
    const v: SlotViews = slotViews(new ArrayBuffer(layout.size), layout, 4);
    for (const c of COLUMNS) expect([c, v[c].BYTES_PER_ELEMENT]).toEqual([c, widths[c]]);
  });

  it('places each column aligned, apart from the others and inside the table, for any slot count', () => {
    for (const slots of [1, 3, 7, 128, 1000, 4097, 65536]) {
      const l = native().slotLayout(slots);
      let end = 0;
      for (const c of COLUMNS) {
        const w = widths[c];
        expect(l[c] % w).toBe(0);
        expect(l[c]).toBeGreaterThanOrEqual(end);
        end = l[c] + w * slots;
      }
      expect(l.size).toBe(end);
      // Views of exactly `slots` elements fit; one more would not.
      const v = slotViews(new ArrayBuffer(l.size), l, slots);
      expect(v.cqRes.byteOffset + v.cqRes.byteLength).toBe(l.size);
    }
  });

  it.each(['AioEngine', 'UringEngine'] as const)("is the layout of the %s's table, before and after it grows", (cls) => {
    const n = native();
    const engine = new n[cls](8, [], () => undefined);
    try {
      expect(engine.layout).toEqual(n.slotLayout(engine.capacity));
      expect(engine.table.byteLength).toBe(engine.layout.size);
      engine.grow(16);
      expect(engine.capacity).toBe(24);
      expect(engine.layout).toEqual(n.slotLayout(24));
      expect(engine.table.byteLength).toBe(engine.layout.size);
      // Rows written before the growth are where the new layout says.
      const before = slotViews(engine.table, engine.layout, 24);
      before.offset[23] = 2 ** 40;
      engine.grow(8);
      expect(slotViews(engine.table, engine.layout, 32).offset[23]).toBe(2 ** 40);
    } finally {
      engine.close();
    }
  });
});
