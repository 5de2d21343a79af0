// The lvstore metadata format (docs/lvol-format.md): cluster maps as runs, and the checks that
// keep a malformed or inconsistent slot from being taken for the current one.
import { describe, expect, it } from 'vitest';
import {
  decodeHeader,
  decodeMeta,
  encodeSlot,
  fromRuns,
  toRuns,
  type LvolMeta,
  type LvstoreMeta,
} from '../../src/modules/lvol/lvol_format.js';

const lvol = (over: Partial<LvolMeta>): LvolMeta => ({
  uuid: 'u',
  name: 'n',
  thin: true,
  clusters: [],
  parent: null,
  parent_clusters: 0,
  read_only: false,
  snapshot: false,
  ...over,
});

function roundTrip(meta: LvstoreMeta): LvstoreMeta | null {
  const buf = Buffer.alloc(meta.slot_size);
  encodeSlot(meta, 7, buf);
  const h = decodeHeader(buf);
  expect(h).toMatchObject({ version: 2, generation: 7, slotSize: meta.slot_size });
  return h === null ? null : decodeMeta(h, buf);
}

const store = (lvols: LvolMeta[]): LvstoreMeta => ({
  uuid: 's',
  name: 'lvs',
  block_size: 512,
  cluster_size: 1 << 20,
  slot_size: 65536,
  data_offset: 1 << 20,
  total_clusters: 100,
  lvols,
});

describe('lvstore format 2', () => {
  it('writes cluster maps as runs and reads them back', () => {
    const maps = [[], [-1], [3], [0, 1, 2, 3], [-1, -1, 5, 6, 9, -1, 7], [4, 3, 2]];
    for (const m of maps) expect(fromRuns(toRuns(m), 100)).toEqual(m);
    expect(toRuns([-1, -1, 5, 6, 9, -1, 7])).toEqual([
      [-1, 2],
      [5, 2],
      [9, 1],
      [-1, 1],
      [7, 1],
    ]);
    // A 1 TiB thin lvol of 4 MiB clusters: one run, not 262144 entries.
    expect(JSON.stringify(toRuns(new Array<number>(262144).fill(-1)))).toBe('[[-1,262144]]');
  });

  it('refuses malformed runs, and maps longer than the limit', () => {
    for (const bad of [[[1]], [[0, 0]], [[-2, 1]], [[1.5, 1]], [['1', 1]], 'x', [[-1, 101]]])
      expect(fromRuns(bad, 100), JSON.stringify(bad)).toBeNull();
  });

  it('keeps snapshot links, and refuses chains that cannot be right', () => {
    const snap = lvol({ uuid: 'p', name: 'snap', clusters: [1, 2], read_only: true, snapshot: true });
    const clone = lvol({ uuid: 'c', name: 'clone', clusters: [-1, 3], parent: 'p', parent_clusters: 2 });
    expect(roundTrip(store([snap, clone]))?.lvols).toEqual([snap, clone]);
    expect(roundTrip(store([clone]))).toBeNull(); // no such parent
    expect(roundTrip(store([{ ...snap, read_only: false }, clone]))).toBeNull(); // a writable parent
    expect(roundTrip(store([snap, { ...clone, parent_clusters: 3 }]))).toBeNull(); // more than the parent has
    expect(
      roundTrip(
        store([
          { ...snap, parent: 'c', parent_clusters: 1 },
          { ...clone, read_only: true },
        ]),
      ),
    ).toBeNull(); // a loop
    expect(roundTrip(store([lvol({ clusters: [100] })]))).toBeNull(); // past the last data cluster
  });
});
