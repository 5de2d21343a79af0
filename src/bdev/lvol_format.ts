// The on-disk format of an lvstore (ours, not SPDK's blobstore). Everything the lvstore knows
// lives in a metadata slot at the start of its base bdev:
//
//   [0, S)          metadata slot A          S = slot_size, a multiple of the block size
//   [S, 2S)         metadata slot B
//   [D, ...)        data clusters: cluster i at D + i * cluster_size (D = data_offset,
//                   the first cluster boundary at or after 2S)
//
// A slot is a 64-byte header, then the metadata as UTF-8 JSON, then zeroes:
//
//   off len  field (integers little-endian)
//   0   8    magic "AIONLVS1"
//   8   4    format version, 1
//   12  4    header length, 64
//   16  8    generation (the valid slot with the higher one is current)
//   24  4    JSON length in bytes
//   28  4    CRC-32 of the JSON bytes
//   32  4    slot size S (so that slot B is found from either header)
//   36  4    CRC-32 of header bytes 0..35
//   40  24   zero
//
// JSON: {"uuid", "name", "block_size", "cluster_size", "slot_size", "data_offset",
// "total_clusters", "lvols": [{"uuid", "name", "thin", "clusters": [c0, c1, ...]}]}, where
// clusters[i] is the data cluster holding the lvol's cluster i, or -1 when a thin lvol has not
// written it yet (it reads as zeroes). An update writes the slot that does not hold the current
// generation, with generation + 1, and flushes: a torn write leaves the other slot valid.
// Slot A's header (one sector, written whole) tells where slot B is; should it be lost, the
// lvstore is not found.
import { crc32 } from 'node:zlib';

export const MAGIC = Buffer.from('AIONLVS1', 'latin1');
export const VERSION = 1;
export const HEADER_LEN = 64;

export interface LvolMeta { uuid: string; name: string; thin: boolean; clusters: number[] }
export interface LvstoreMeta {
  uuid: string; name: string; block_size: number; cluster_size: number; slot_size: number;
  data_offset: number; total_clusters: number; lvols: LvolMeta[];
}

/** Writes one slot image (slot_size bytes) into `out`. Throws when the JSON does not fit. */
export function encodeSlot(meta: LvstoreMeta, generation: number, out: Buffer): void {
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  if (HEADER_LEN + json.length > meta.slot_size) throw new RangeError(`lvstore metadata of ${json.length} bytes exceeds its ${meta.slot_size}-byte slot`);
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

export interface DecodedHeader { generation: number; jsonLength: number; jsonCrc: number; slotSize: number }

/** The header of a slot, or null when it is not a valid slot header. */
export function decodeHeader(b: Buffer): DecodedHeader | null {
  if (b.length < HEADER_LEN || !b.subarray(0, 8).equals(MAGIC)) return null;
  if (b.readUInt32LE(8) !== VERSION || b.readUInt32LE(12) !== HEADER_LEN) return null;
  if (crc32(b.subarray(0, 36)) !== b.readUInt32LE(36)) return null;
  return { generation: Number(b.readBigUInt64LE(16)), jsonLength: b.readUInt32LE(24), jsonCrc: b.readUInt32LE(28), slotSize: b.readUInt32LE(32) };
}

function isObject(v: unknown): v is Record<string, unknown> { return typeof v === 'object' && v !== null && !Array.isArray(v); }

/** The metadata of a slot whose header `h` was read, or null when the JSON is torn or malformed. */
export function decodeMeta(h: DecodedHeader, b: Buffer): LvstoreMeta | null {
  const json = b.subarray(HEADER_LEN, HEADER_LEN + h.jsonLength);
  if (json.length !== h.jsonLength || crc32(json) !== h.jsonCrc) return null;
  let v: unknown;
  try { v = JSON.parse(json.toString('utf8')); } catch { return null; }
  if (!isObject(v) || !Array.isArray(v['lvols'])) return null;
  for (const k of ['block_size', 'cluster_size', 'slot_size', 'data_offset', 'total_clusters']) if (typeof v[k] !== 'number') return null;
  if (typeof v['uuid'] !== 'string' || typeof v['name'] !== 'string') return null;
  const lvols: LvolMeta[] = [];
  for (const l of v['lvols']) {
    if (!isObject(l) || typeof l['uuid'] !== 'string' || typeof l['name'] !== 'string' || typeof l['thin'] !== 'boolean') return null;
    const clusters = l['clusters'];
    if (!Array.isArray(clusters) || !clusters.every((c): c is number => typeof c === 'number' && Number.isInteger(c))) return null;
    lvols.push({ uuid: l['uuid'], name: l['name'], thin: l['thin'], clusters });
  }
  return {
    uuid: v['uuid'], name: v['name'], block_size: v['block_size'] as number, cluster_size: v['cluster_size'] as number,
    slot_size: v['slot_size'] as number, data_offset: v['data_offset'] as number, total_clusters: v['total_clusters'] as number, lvols,
  };
}

/** Slot size for a store of `clusters` data clusters: room for every cluster map entry, block aligned. */
export function slotSizeFor(clusters: number, blockSize: number): number {
  const bytes = 64 * 1024 + clusters * 12;
  return Math.ceil(bytes / Math.max(blockSize, 4096)) * Math.max(blockSize, 4096);
}
