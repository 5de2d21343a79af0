// Encoders for the fixed messages of the handshake and for simple replies.
import {
  EXPORT_NAME_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_IHAVEOPT,
  NBD_MAGIC,
  NBD_OPT_REPLY_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  OPTION_REPLY_HEADER_LEN,
  SIMPLE_REPLY_LEN,
} from './constants.js';

export function encodeGreeting(): Buffer {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBD_MAGIC, 0);
  b.writeBigUInt64BE(NBD_IHAVEOPT, 8);
  b.writeUInt16BE(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES, 16);
  return b;
}

export function encodeOptionReply(option: number, type: number, data?: Buffer): Buffer {
  const len = data?.length ?? 0;
  const b = Buffer.alloc(OPTION_REPLY_HEADER_LEN + len);
  b.writeBigUInt64BE(NBD_OPT_REPLY_MAGIC, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(type, 12);
  b.writeUInt32BE(len, 16);
  data?.copy(b, OPTION_REPLY_HEADER_LEN);
  return b;
}

export function encodeExportNameReply(size: number, flags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(10 + (noZeroes ? 0 : EXPORT_NAME_ZEROES));
  b.writeBigUInt64BE(BigInt(size), 0);
  b.writeUInt16BE(flags, 8);
  return b;
}

export function encodeInfoExport(size: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(0, 0);
  b.writeBigUInt64BE(BigInt(size), 2);
  b.writeUInt16BE(flags, 10);
  return b;
}

export function encodeInfoString(type: number, s: string): Buffer {
  const str = Buffer.from(s, 'utf8');
  const b = Buffer.alloc(2 + str.length);
  b.writeUInt16BE(type, 0);
  str.copy(b, 2);
  return b;
}

export function encodeInfoBlockSize(min: number, preferred: number, max: number): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(3, 0);
  b.writeUInt32BE(min, 2);
  b.writeUInt32BE(preferred, 6);
  b.writeUInt32BE(max, 10);
  return b;
}

export function encodeServerEntry(name: string, description: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const d = Buffer.from(description, 'utf8');
  const b = Buffer.alloc(4 + n.length + d.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  d.copy(b, 4 + n.length);
  return b;
}

/** Writes a simple reply header into `into` (16 bytes), copying the cookie unchanged. */
export function writeSimpleReply(into: Buffer, error: number, cookie: Buffer): Buffer {
  into.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, 0);
  into.writeUInt32BE(error, 4);
  cookie.copy(into, 8, 0, 8);
  return into;
}

export function encodeSimpleReply(cookie: Buffer, error: number): Buffer {
  return writeSimpleReply(Buffer.alloc(SIMPLE_REPLY_LEN), error, cookie);
}
