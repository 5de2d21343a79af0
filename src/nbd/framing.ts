// Socket chunks in, requests out: a cursor over each chunk, no concatenation. Keeps no
// reference to a chunk after push() returns. Compact (28-byte) or extended (32-byte) headers,
// fixed at negotiation. A request waits (and the stream with it) until the sink admits it, and
// a payload longer than its buffer arrives in pieces: the framer stops at each full buffer until
// the sink hands it the next one.
import {
  EXTENDED_REQUEST_LEN,
  NBD_CMD,
  NBD_CMD_FLAG_PAYLOAD_LEN,
  NBD_EXTENDED_REQUEST_MAGIC,
  NBD_REQUEST_MAGIC,
  REQUEST_LEN,
} from './constants.js';

export interface RequestSink {
  /** A request slot is free (otherwise the framer stops and the caller holds the rest). */
  hasFreeSlot(): boolean;
  /**
   * A header was parsed. When `payload` is true, `length` bytes of payload follow: return where
   * they go (at least `length` bytes), or null to read and discard them. The cookie is the 8
   * bytes at cookieSrc[cookieAt..].
   */
  request(
    type: number,
    flags: number,
    cookieSrc: Buffer,
    cookieAt: number,
    offset: number,
    length: number,
    payload: boolean,
  ): Buffer | null;
  /**
   * May this request start now (memory for it)? False parks the header until resume(); the
   * sink must call the framer's resume() and feed the held bytes again when it may.
   * Absent: always.
   */
  admit?(type: number, flags: number, offset: number, length: number, payload: boolean): boolean;
  /**
   * The buffer request() returned is full and more payload follows: no byte more is taken
   * until payloadContinue() hands over where the rest goes. Absent: request() must return a
   * buffer for the whole payload.
   */
  payloadPiece?(filled: number): void;
  /** The payload announced by the last request() is complete (the last piece, if in pieces). */
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
  /** Bytes of #dst this piece fills: at most the payload left. */
  #dstCap = 0;
  /** A full piece waits for the sink: nothing more is taken. */
  #blocked = false;
  #payloadLeft = 0;
  #stopped = false;

  /**
   * `discardLimit`: a payload longer than this is not worth reading to stay in sync: disconnect.
   * With extended headers the spec asks for that above the maximum payload already.
   */
  constructor(
    private readonly sink: RequestSink,
    private readonly discardLimit: number,
    extended = false,
  ) {
    this.#extended = extended;
    this.#hlen = extended ? EXTENDED_REQUEST_LEN : REQUEST_LEN;
    this.#magic = extended ? NBD_EXTENDED_REQUEST_MAGIC : NBD_REQUEST_MAGIC;
    this.#scratch = Buffer.allocUnsafe(this.#hlen);
  }

  get stopped(): boolean {
    return this.#stopped;
  }
  /** Bytes of a payload still expected. */
  get payloadLeft(): number {
    return this.#payloadLeft;
  }

  /** Parse nothing more (after NBD_CMD_DISC, or on close). */
  stop(): void {
    this.#stopped = true;
  }

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
        if (this.#blocked) return pos - start; // the piece's buffer is busy
        // Payload goes straight to its pooled, aligned home.
        let n = Math.min(this.#payloadLeft, end - pos);
        if (this.#dst !== null) {
          n = Math.min(n, this.#dstCap - this.#dstPos);
          chunk.copy(this.#dst, this.#dstPos, pos, pos + n);
        }
        pos += n;
        this.#payloadAdvance(n);
      } else if (this.#scratchLen === hlen) {
        // A header parked for want of a slot or of memory.
        if (!this.sink.hasFreeSlot() || !this.#header(this.#scratch, 0)) return pos - start;
        this.#scratchLen = 0;
      } else if (this.#scratchLen === 0 && !this.sink.hasFreeSlot()) {
        return pos - start; // backpressure, never allocation
      } else if (this.#scratchLen === 0 && end - pos >= hlen) {
        // Common case: parse in place; a header not admitted stays in the caller's bytes.
        if (!this.#header(chunk, pos)) return pos - start;
        pos += hlen;
      } else {
        const n = Math.min(hlen - this.#scratchLen, end - pos);
        chunk.copy(this.#scratch, this.#scratchLen, pos, pos + n);
        this.#scratchLen += n;
        pos += n;
        if (this.#scratchLen === hlen) {
          // Header complete; parked when no slot or memory is free, parsed by resume().
          if (!this.sink.hasFreeSlot() || !this.#header(this.#scratch, 0)) return pos - start;
          this.#scratchLen = 0;
        }
      }
    }
    return pos - start;
  }

  /**
   * Where the rest of the current WRITE payload goes, for a transport that reads it straight
   * from the socket: null when no payload is expected or it is being discarded.
   */
  get payloadDst(): Buffer | null {
    return this.#payloadLeft > 0 && !this.#blocked ? this.#dst : null;
  }
  /** Offset in payloadDst of the next payload byte. */
  get payloadPos(): number {
    return this.#dstPos;
  }
  /** Bytes that may be written into payloadDst at payloadPos now (the rest of this piece). */
  get payloadRoom(): number {
    return this.payloadDst === null ? 0 : this.#dstCap - this.#dstPos;
  }

  /** `n` payload bytes (at most payloadRoom) were written into payloadDst at payloadPos. */
  payloadReceived(n: number): void {
    if (n > this.payloadRoom || this.#stopped) return;
    this.#payloadAdvance(n);
  }

  /** The next piece of the payload goes into `dst` (null: read and drop the rest). */
  payloadContinue(dst: Buffer | null): void {
    if (!this.#blocked) return;
    this.#blocked = false;
    this.#setDst(dst);
  }

  #setDst(dst: Buffer | null): void {
    this.#dst = dst;
    this.#dstPos = 0;
    this.#dstCap = dst === null ? 0 : Math.min(dst.length, this.#payloadLeft);
  }

  #payloadAdvance(n: number): void {
    this.#dstPos += n;
    this.#payloadLeft -= n;
    if (this.#payloadLeft === 0) {
      this.#dst = null;
      this.sink.payloadDone();
      return;
    }
    if (this.#dst !== null && this.#dstPos === this.#dstCap) {
      this.#blocked = true;
      this.sink.payloadPiece?.(this.#dstPos);
    }
  }

  /** Parses a complete header parked in scratch while no slot or memory was free. */
  resume(): void {
    if (this.#scratchLen === this.#hlen && !this.#stopped && this.sink.hasFreeSlot() && this.#header(this.#scratch, 0)) {
      this.#scratchLen = 0;
    }
  }

  /** False: not admitted now, nothing was done (parse it again later). */
  #header(b: Buffer, at: number): boolean {
    if (b.readUInt32BE(at) !== this.#magic) {
      this.#fail('bad request magic');
      return true;
    }
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
      return true;
    }
    if (this.sink.admit !== undefined && !this.sink.admit(type, flags, offset, length, payload)) return false;
    const dst = this.sink.request(type, flags, b, at + 8, offset, length, payload);
    if (!payload || this.#stopped) return true;
    this.#payloadLeft = length;
    this.#blocked = false;
    this.#setDst(dst);
    if (length === 0) this.sink.payloadDone();
    return true;
  }

  #fail(reason: string): void {
    this.#stopped = true;
    this.sink.protocolError(reason);
  }
}
