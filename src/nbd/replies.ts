// Reply headers for the three reply styles a connection may negotiate: simple (16 bytes),
// structured chunks (20-byte header) and extended chunks (32-byte header). Hot-path headers are
// written into per-request buffers; error and block-status replies are rare and allocate.
import {
  EXTENDED_REPLY_HEADER_LEN,
  NBD_EXTENDED_REPLY_MAGIC,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  SIMPLE_REPLY_LEN,
  STRUCTURED_REPLY_HEADER_LEN,
} from './constants.js';

export const enum ReplyStyle {
  Simple,
  Structured,
  Extended,
}

export function chunkHeaderLen(style: ReplyStyle): number {
  return style === ReplyStyle.Extended ? EXTENDED_REPLY_HEADER_LEN : STRUCTURED_REPLY_HEADER_LEN;
}

/**
 * Writes a chunk header at `into[0..]`. `reqOffset` is the request's offset field as it came
 * off the wire (8 bytes): extended headers echo it exactly, whatever its value.
 */
export function writeChunkHeader(
  into: Buffer,
  style: ReplyStyle,
  flags: number,
  type: number,
  cookie: Buffer,
  reqOffset: Buffer,
  payloadLen: number,
): void {
  if (style === ReplyStyle.Extended) {
    into.writeUInt32BE(NBD_EXTENDED_REPLY_MAGIC, 0);
    into.writeUInt16BE(flags, 4);
    into.writeUInt16BE(type, 6);
    cookie.copy(into, 8, 0, 8);
    reqOffset.copy(into, 16, 0, 8);
    writeU64(into, 24, payloadLen);
  } else {
    into.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, 0);
    into.writeUInt16BE(flags, 4);
    into.writeUInt16BE(type, 6);
    cookie.copy(into, 8, 0, 8);
    into.writeUInt32BE(payloadLen, 16);
  }
}

/** A u64 from a double (exact below 2^53, which every offset and length we produce is). */
export function writeU64(into: Buffer, at: number, v: number): void {
  into.writeUInt32BE(Math.floor(v / 2 ** 32), at);
  into.writeUInt32BE(v >>> 0, at + 4);
}

/** Header of an OFFSET_DATA chunk carrying `dataLen` bytes at `dataOffset`: chunk header + u64 offset. */
export function writeDataChunkHeader(
  into: Buffer,
  style: ReplyStyle,
  done: boolean,
  cookie: Buffer,
  reqOffset: Buffer,
  dataOffset: number,
  dataLen: number,
): number {
  const h = chunkHeaderLen(style);
  writeChunkHeader(into, style, done ? NBD_REPLY_FLAG_DONE : 0, NBD_REPLY_TYPE.OFFSET_DATA, cookie, reqOffset, 8 + dataLen);
  writeU64(into, h, dataOffset);
  return h + 8;
}

export function encodeHoleChunk(
  style: ReplyStyle,
  done: boolean,
  cookie: Buffer,
  reqOffset: Buffer,
  holeOffset: number,
  holeLen: number,
): Buffer {
  const h = chunkHeaderLen(style);
  const b = Buffer.alloc(h + 12);
  writeChunkHeader(b, style, done ? NBD_REPLY_FLAG_DONE : 0, NBD_REPLY_TYPE.OFFSET_HOLE, cookie, reqOffset, 12);
  writeU64(b, h, holeOffset);
  b.writeUInt32BE(holeLen, h + 8);
  return b;
}

/** A final ERROR chunk with a short message (QEMU refuses non-data chunks over 1000 bytes). */
export function encodeErrorChunk(style: ReplyStyle, cookie: Buffer, reqOffset: Buffer, error: number, message: string): Buffer {
  const msg = Buffer.from(message.slice(0, 200), 'utf8');
  const h = chunkHeaderLen(style);
  const b = Buffer.alloc(h + 6 + msg.length);
  writeChunkHeader(b, style, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE.ERROR, cookie, reqOffset, 6 + msg.length);
  b.writeUInt32BE(error, h);
  b.writeUInt16BE(msg.length, h + 4);
  msg.copy(b, h + 6);
  return b;
}

/** Success without data: a simple reply on compact connections, a NONE chunk with extended headers. */
export function writeDoneReply(into: Buffer, style: ReplyStyle, cookie: Buffer, reqOffset: Buffer): number {
  if (style === ReplyStyle.Extended) {
    writeChunkHeader(into, style, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE.NONE, cookie, reqOffset, 0);
    return EXTENDED_REPLY_HEADER_LEN;
  }
  into.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, 0);
  into.writeUInt32BE(0, 4);
  cookie.copy(into, 8, 0, 8);
  return SIMPLE_REPLY_LEN;
}

export interface Extent {
  length: number;
  flags: number;
}

/** One BLOCK_STATUS chunk (compact: 32-bit extents; extended: 64-bit) for one context; DONE on the last context's. */
export function encodeBlockStatus(
  style: ReplyStyle,
  cookie: Buffer,
  reqOffset: Buffer,
  contextId: number,
  extents: readonly Extent[],
  done = true,
): Buffer {
  const h = chunkHeaderLen(style);
  const flags = done ? NBD_REPLY_FLAG_DONE : 0;
  if (style === ReplyStyle.Extended) {
    const payload = 8 + 16 * extents.length;
    const b = Buffer.alloc(h + payload);
    writeChunkHeader(b, style, flags, NBD_REPLY_TYPE.BLOCK_STATUS_EXT, cookie, reqOffset, payload);
    b.writeUInt32BE(contextId, h);
    b.writeUInt32BE(extents.length, h + 4);
    extents.forEach((e, i) => {
      writeU64(b, h + 8 + 16 * i, e.length);
      writeU64(b, h + 16 + 16 * i, e.flags);
    });
    return b;
  }
  const payload = 4 + 8 * extents.length;
  const b = Buffer.alloc(h + payload);
  writeChunkHeader(b, style, flags, NBD_REPLY_TYPE.BLOCK_STATUS, cookie, reqOffset, payload);
  b.writeUInt32BE(contextId, h);
  extents.forEach((e, i) => {
    b.writeUInt32BE(e.length, h + 4 + 8 * i);
    b.writeUInt32BE(e.flags, h + 8 + 8 * i);
  });
  return b;
}
