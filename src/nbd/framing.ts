// Socket chunks in, requests out: a cursor over each chunk, no concatenation. Keeps no
// reference to a chunk after push() returns. Compact (28-byte) or extended (32-byte) headers,
// fixed at negotiation.
import {
  EXTENDED_REQUEST_LEN, NBD_CMD, NBD_CMD_FLAG_PAYLOAD_LEN, NBD_EXTENDED_REQUEST_MAGIC, NBD_REQUEST_MAGIC, REQUEST_LEN,
} from './constants.js';

export interface RequestSink {
  /** A request slot is free (otherwise the framer stops and the caller holds the rest). */
  hasFreeSlot(): boolean;
  /**
   * A header was parsed. When `payload` is true, `length` bytes of payload follow: return where
   * they go (at least `length` bytes), or null to read and discard them. The cookie is the 8
   * bytes at cookieSrc[cookieAt..].
   */
  request(type: number, flags: number, cookieSrc: Buffer, cookieAt: number, offset: number, length: number, payload: boolean): Buffer | null;
  /** The payload announced by the last request() is complete. */
  payloadDone(): void;
  /** The stream can no longer be parsed; the connection must close. Nothing more is read. */
  protocolError(reason: string): void;
}

export class RequestFramer {
  readonly #hlen: number;
  readonly #magic: number;
  readonly #extended: boolean;
  readonly #scratch: Buffer; // only for headers split across chunks
  #scratchLen = 0;
  #dst: Buffer | null = null;
  #dstPos = 0;
  #payloadLeft = 0;
  #stopped = false;

  /**
   * `discardLimit`: a payload longer than this is not worth reading to stay in sync: disconnect.
   * With extended headers the spec asks for that above the maximum payload already.
   */
  constructor(private readonly sink: RequestSink, private readonly discardLimit: number, extended = false) {
    this.#extended = extended;
    this.#hlen = extended ? EXTENDED_REQUEST_LEN : REQUEST_LEN;
    this.#magic = extended ? NBD_EXTENDED_REQUEST_MAGIC : NBD_REQUEST_MAGIC;
    this.#scratch = Buffer.allocUnsafe(this.#hlen);
  }

  get stopped(): boolean { return this.#stopped; }
  /** Bytes of a payload still expected. */
  get payloadLeft(): number { return this.#payloadLeft; }

  /** Parse nothing more (after NBD_CMD_DISC, or on close). */
  stop(): void { this.#stopped = true; }

  /**
   * Parses chunk[start..end) and returns the bytes consumed. Fewer than offered means no
   * request slot is free: the caller keeps the rest (one reference, no copy) and pushes it
   * again when a slot frees.
   */
  push(chunk: Buffer, start = 0, end = chunk.length): number {
    let pos = start;
    const hlen = this.#hlen;
    while (pos < end && !this.#stopped) {
      if (this.#payloadLeft > 0) {
        // Payload goes straight to its pooled, aligned home.
        const n = Math.min(this.#payloadLeft, end - pos);
        if (this.#dst !== null) chunk.copy(this.#dst, this.#dstPos, pos, pos + n);
        pos += n;
        this.#payloadAdvance(n);
      } else if (this.#scratchLen === 0 && !this.sink.hasFreeSlot()) {
        return pos - start; // backpressure, never allocation
      } else if (this.#scratchLen === 0 && end - pos >= hlen) {
        this.#header(chunk, pos); // common case: parse in place
        pos += hlen;
      } else {
        const n = Math.min(hlen - this.#scratchLen, end - pos);
        chunk.copy(this.#scratch, this.#scratchLen, pos, pos + n);
        this.#scratchLen += n;
        pos += n;
        if (this.#scratchLen === hlen) {
          if (!this.sink.hasFreeSlot()) return pos - start; // header complete; parsed when a slot frees
          this.#scratchLen = 0;
          this.#header(this.#scratch, 0);
        }
      }
    }
    return pos - start;
  }

  /**
   * Where the rest of the current WRITE payload goes, for a transport that reads it straight
   * from the socket: null when no payload is expected or it is being discarded.
   */
  get payloadDst(): Buffer | null { return this.#payloadLeft > 0 ? this.#dst : null; }
  /** Offset in payloadDst of the next payload byte. */
  get payloadPos(): number { return this.#dstPos; }

  /** `n` payload bytes (at most payloadLeft) were written into payloadDst at payloadPos. */
  payloadReceived(n: number): void {
    if (n > this.#payloadLeft || this.#stopped) return;
    this.#payloadAdvance(n);
  }

  #payloadAdvance(n: number): void {
    this.#dstPos += n;
    this.#payloadLeft -= n;
    if (this.#payloadLeft === 0) { this.#dst = null; this.sink.payloadDone(); }
  }

  /** Parses a complete header parked in scratch while no slot was free. */
  resume(): void {
    if (this.#scratchLen === this.#hlen && !this.#stopped && this.sink.hasFreeSlot()) {
      this.#scratchLen = 0;
      this.#header(this.#scratch, 0);
    }
  }

  #header(b: Buffer, at: number): void {
    if (b.readUInt32BE(at) !== this.#magic) { this.#fail('bad request magic'); return; }
    const flags = b.readUInt16BE(at + 4);
    const type = b.readUInt16BE(at + 6);
    // Above 2^53 offsets and lengths lose precision, but any such value fails the range check anyway.
    const offset = b.readUInt32BE(at + 16) * 2 ** 32 + b.readUInt32BE(at + 20);
    let length: number;
    let payload: boolean;
    if (this.#extended) {
      length = b.readUInt32BE(at + 24) * 2 ** 32 + b.readUInt32BE(at + 28);
      payload = (flags & NBD_CMD_FLAG_PAYLOAD_LEN) !== 0;
    } else {
      length = b.readUInt32BE(at + 24);
      payload = type === NBD_CMD.WRITE;
    }
    // The length decides how many bytes come off the wire next, so it is checked first.
    if (payload && length > this.discardLimit) {
      this.#fail(`payload of ${length} bytes is beyond what we read to stay in sync (${this.discardLimit})`);
      return;
    }
    const dst = this.sink.request(type, flags, b, at + 8, offset, length, payload);
    if (!payload || this.#stopped) return;
    this.#dst = dst;
    this.#dstPos = 0;
    this.#payloadLeft = length;
    if (length === 0) this.sink.payloadDone();
  }

  #fail(reason: string): void {
    this.#stopped = true;
    this.sink.protocolError(reason);
  }
}
