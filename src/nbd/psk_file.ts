// The PSK file of --tls-psk: "identity:hexkey" lines, the format GnuTLS's psktool writes and
// nbdkit and qemu-nbd read. Blank lines and "#" comments are skipped.
import { UsageError } from '../errors.js';

/** RFC 4279 has every implementation take identities of at least 128 bytes; longer ones may not reach us. */
export const MAX_PSK_IDENTITY_BYTES = 128;
/** Below 128 bits a key recorded from one handshake can be searched offline. */
export const MIN_PSK_KEY_BYTES = 16;
/** OpenSSL's PSK_MAX_PSK_LEN: a longer key could never complete a handshake. */
export const MAX_PSK_KEY_BYTES = 512;

export function parsePskFile(text: string, path = 'PSK file'): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const lineOf = new Map<string, number>();
  for (const [i, raw] of text.split('\n').entries()) {
    const n = i + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    // One colon only: psktool's readers split at the first one, so "a:b:key" would be "a" elsewhere.
    const m = /^([^:]+):([0-9a-fA-F]*)$/.exec(line);
    if (m === null) throw new UsageError(`${path} line ${n}: expected identity:hexkey (one colon, the key in hex)`);
    const [, id = '', hex = ''] = m;
    if (/[\u0000-\u001f\u007f]/.test(id)) throw new UsageError(`${path} line ${n}: the identity holds a control character`);
    if (Buffer.byteLength(id, 'utf8') > MAX_PSK_IDENTITY_BYTES)
      throw new UsageError(`${path} line ${n}: the identity is longer than ${MAX_PSK_IDENTITY_BYTES} bytes`);
    if (hex.length % 2 !== 0) throw new UsageError(`${path} line ${n}: the key has an odd number of hex digits`);
    const key = Buffer.from(hex, 'hex');
    if (key.length < MIN_PSK_KEY_BYTES || key.length > MAX_PSK_KEY_BYTES) {
      throw new UsageError(
        `${path} line ${n}: the key is ${key.length} bytes; it must be ${MIN_PSK_KEY_BYTES} to ${MAX_PSK_KEY_BYTES} (psktool makes 32)`,
      );
    }
    if (key.every((b) => b === 0))
      throw new UsageError(`${path} line ${n}: the key is all zero bytes (a placeholder?): make one with psktool`);
    const first = lineOf.get(id);
    if (first !== undefined) throw new UsageError(`${path} line ${n}: identity "${id}" is already on line ${first}`);
    lineOf.set(id, n);
    out.set(id, key);
  }
  if (out.size === 0) throw new UsageError(`${path} holds no identity:hexkey line`);
  return out;
}
