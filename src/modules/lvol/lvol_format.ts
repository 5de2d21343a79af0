// The on-disk format of an lvstore (ours, not SPDK's blobstore), described in full in
// docs/lvol-format.md. In short: two metadata slots at the start of the base bdev, each a
// 64-byte header (magic "AIONLVS1", format version, generation, CRC-32s, slot size) and the
// lvstore's metadata as JSON; the slot with the higher valid generation is current, and an
// update writes the other one. Then the data clusters.
//
// Versions: format 1 (the first lvol release) has plain cluster maps and no snapshots; format 2
// adds snapshots and clones (parent, parent_clusters, read_only, snapshot) and writes cluster
// maps as runs. Both are read; format 2 is written, so a format 1 store is rewritten in format 2
// at its first metadata change. A store in a newer format is not opened (nothing is written to
// it) and examine says which version it is.
import { crc32 } from 'node:zlib';
import { isObject } from '../../util/is_object.js';

export const MAGIC = Buffer.from('AIONLVS1', 'latin1');
/** The version this code writes. */
export const VERSION = 2;
/** Versions this code reads. */
export const READABLE_VERSIONS: readonly number[] = [1, 2];
export const HEADER_LEN = 64;
/** Clusters one lvol may have (its map is held in memory): 256 TiB with the default 4 MiB clusters. */
export const MAX_LVOL_CLUSTERS = 2 ** 26;

export interface LvolMeta {
  uuid: string;
  name: string;
  thin: boolean;
  /** clusters[i]: the data cluster holding the lvol's cluster i, or -1 when it has none of its own. */
  clusters: number[];
  /** UUID of the read-only lvol (snapshot) this one is a clone of, or null. */
  parent: string | null;
  /** Leading clusters whose data may come from the parent; past them, unallocated reads as zeroes. */
  parent_clusters: number;
  /** Writes are refused (snapshots, and bdev_lvol_set_read_only). */
  read_only: boolean;
  /** Made by bdev_lvol_snapshot. */
  snapshot: boolean;
}

export interface LvstoreMeta {
  uuid: string;
  name: string;
  block_size: number;
  cluster_size: number;
  slot_size: number;
  data_offset: number;
  total_clusters: number;
  lvols: LvolMeta[];
}

/** Cluster map as runs: [first, count] for count consecutive clusters from first, or [-1, count] unallocated. */
export function toRuns(clusters: readonly number[]): number[][] {
  const runs: number[][] = [];
  for (const c of clusters) {
    const last = runs[runs.length - 1];
    if (last !== undefined && (c < 0 ? last[0] === -1 : last[0] !== -1 && (last[0] as number) + (last[1] as number) === c))
      last[1] = (last[1] as number) + 1;
    else runs.push([c < 0 ? -1 : c, 1]);
  }
  return runs;
}

/** The inverse of toRuns(), or null when the runs are malformed or would exceed `limit` clusters. */
export function fromRuns(v: unknown, limit: number): number[] | null {
  if (!Array.isArray(v)) return null;
  const out: number[] = [];
  for (const r of v) {
    if (!Array.isArray(r) || r.length !== 2) return null;
    const [first, count] = r as unknown[];
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(count) || (first as number) < -1 || (count as number) < 1) return null;
    if (out.length + (count as number) > limit) return null;
    for (let i = 0; i < (count as number); i++) out.push(first === -1 ? -1 : (first as number) + i);
  }
  return out;
}

/** Writes one slot image (slot_size bytes) into `out`, in the current format. Throws when it does not fit. */
export function encodeSlot(meta: LvstoreMeta, generation: number, out: Buffer): void {
  const doc = { ...meta, lvols: meta.lvols.map((l) => ({ ...l, clusters: toRuns(l.clusters) })) };
  const json = Buffer.from(JSON.stringify(doc), 'utf8');
  if (HEADER_LEN + json.length > meta.slot_size)
    throw new RangeError(`lvstore metadata of ${json.length} bytes exceeds its ${meta.slot_size}-byte slot`);
  out.fill(0, 0, meta.slot_size);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(VERSION, 8);
  out.writeUInt32LE(HEADER_LEN, 12);
  out.writeBigUInt64LE(BigInt(generation), 16);
  out.writeUInt32LE(json.length, 24);
  out.writeUInt32LE(crc32(json), 28);
  out.writeUInt32LE(meta.slot_size, 32);
  out.writeUInt32LE(crc32(out.subarray(0, 36)), 36);
  json.copy(out, HEADER_LEN);
}

export interface DecodedHeader {
  version: number;
  generation: number;
  jsonLength: number;
  jsonCrc: number;
  slotSize: number;
}

/** The header of a slot (of any version: check it against READABLE_VERSIONS), or null when it is not one. */
export function decodeHeader(b: Buffer): DecodedHeader | null {
  if (b.length < HEADER_LEN || !b.subarray(0, 8).equals(MAGIC)) return null;
  if (b.readUInt32LE(12) !== HEADER_LEN) return null;
  if (crc32(b.subarray(0, 36)) !== b.readUInt32LE(36)) return null;
  return {
    version: b.readUInt32LE(8),
    generation: Number(b.readBigUInt64LE(16)),
    jsonLength: b.readUInt32LE(24),
    jsonCrc: b.readUInt32LE(28),
    slotSize: b.readUInt32LE(32),
  };
}

/** One lvol entry of either version, or null when malformed. */
function decodeLvol(l: unknown, version: number, total: number): LvolMeta | null {
  if (!isObject(l) || typeof l['uuid'] !== 'string' || typeof l['name'] !== 'string' || typeof l['thin'] !== 'boolean') return null;
  if (version === 1) {
    const c = l['clusters'];
    if (
      !Array.isArray(c) ||
      c.length > MAX_LVOL_CLUSTERS ||
      !c.every((x): x is number => Number.isSafeInteger(x) && (x as number) >= -1 && (x as number) < total)
    )
      return null;
    return {
      uuid: l['uuid'],
      name: l['name'],
      thin: l['thin'],
      clusters: c,
      parent: null,
      parent_clusters: 0,
      read_only: false,
      snapshot: false,
    };
  }
  const clusters = fromRuns(l['clusters'], MAX_LVOL_CLUSTERS);
  const parent = l['parent'],
    pc = l['parent_clusters'];
  if (clusters === null || !(parent === null || typeof parent === 'string') || !Number.isSafeInteger(pc) || (pc as number) < 0) return null;
  if (typeof l['read_only'] !== 'boolean' || typeof l['snapshot'] !== 'boolean') return null;
  if (clusters.some((c) => c >= total)) return null;
  return {
    uuid: l['uuid'],
    name: l['name'],
    thin: l['thin'],
    clusters,
    parent,
    parent_clusters: pc as number,
    read_only: l['read_only'],
    snapshot: l['snapshot'],
  };
}

/** The metadata of a slot whose header `h` was read, or null when the JSON is torn or malformed. */
export function decodeMeta(h: DecodedHeader, b: Buffer): LvstoreMeta | null {
  if (!READABLE_VERSIONS.includes(h.version)) return null;
  const json = b.subarray(HEADER_LEN, HEADER_LEN + h.jsonLength);
  if (json.length !== h.jsonLength || crc32(json) !== h.jsonCrc) return null;
  let v: unknown;
  try {
    v = JSON.parse(json.toString('utf8'));
  } catch {
    return null;
  }
  if (!isObject(v) || !Array.isArray(v['lvols'])) return null;
  for (const k of ['block_size', 'cluster_size', 'slot_size', 'data_offset', 'total_clusters']) if (typeof v[k] !== 'number') return null;
  if (typeof v['uuid'] !== 'string' || typeof v['name'] !== 'string') return null;
  const total = v['total_clusters'] as number;
  const lvols: LvolMeta[] = [];
  for (const l of v['lvols']) {
    const m = decodeLvol(l, h.version, total);
    if (m === null) return null;
    lvols.push(m);
  }
  if (!chainsValid(lvols)) return null;
  return {
    uuid: v['uuid'],
    name: v['name'],
    block_size: v['block_size'] as number,
    cluster_size: v['cluster_size'] as number,
    slot_size: v['slot_size'] as number,
    data_offset: v['data_offset'] as number,
    total_clusters: total,
    lvols,
  };
}

/** Every parent exists, is read-only and covers parent_clusters; no chain loops. */
function chainsValid(lvols: LvolMeta[]): boolean {
  const byUuid = new Map(lvols.map((l) => [l.uuid, l]));
  for (const l of lvols) {
    let m: LvolMeta | undefined = l;
    for (let depth = 0; m !== undefined && m.parent !== null; depth++) {
      const p = byUuid.get(m.parent);
      if (p === undefined || !p.read_only || m.parent_clusters > p.clusters.length || depth > lvols.length) return false;
      m = p;
    }
  }
  return true;
}

/**
 * Slot size for a store of `clusters` data clusters, block aligned: room for the worst cluster
 * maps (every allocated cluster a run of its own, between unallocated runs).
 */
export function slotSizeFor(clusters: number, blockSize: number): number {
  const bytes = 64 * 1024 + clusters * 24;
  return Math.ceil(bytes / Math.max(blockSize, 4096)) * Math.max(blockSize, 4096);
}
