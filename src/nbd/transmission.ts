// The transmission phase of one connection: requests framed from the socket, validated, run
// on the export's bdev, and answered in completion order in the negotiated reply style.
// Memory: a request is parsed only once the server's budget admits what it will hold, and a
// READ or WRITE longer than IO_CHUNK runs in pieces through one IO_CHUNK buffer: a READ's reply
// is streamed piece by piece, a WRITE's payload is written as each piece arrives.
import type { Duplex } from 'node:stream';
import { constants } from 'node:os';
import type { Logger } from '../log.js';
import { hasBlockStatus } from '../bdev/block_status.js';
import { IO_CHUNK, type BufferPool } from '../bdev/buffers.js';
import { kickSubmissions } from '../bdev/submit_kick.js';
import { unalignedAdapter, type UnalignedAdapter } from '../bdev/unaligned.js';
import { IoFlag, IoType, newIo, type BdevIo } from '../bdev/types.js';
import {
  MAX_EXTENTS,
  META_ID_BASE_ALLOCATION,
  NBD_CMD,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_NAME,
  NBD_ERR,
  NBD_STATE_ZERO,
} from './constants.js';
import { type BudgetAccount, ioCharge, MemoryBudget } from './budget.js';
import { toNbdError } from './errno.js';
import type { Export } from './export.js';
import { contextExtents } from './extents.js';
import { RequestFramer, type RequestSink } from './framing.js';
import {
  ReplyStyle,
  encodeBlockStatus,
  encodeErrorChunk,
  encodeHoleChunk,
  writeDataChunkHeader,
  writeDoneReply,
  type Extent,
} from './replies.js';
import { openTransport } from './open_transport.js';
import { SLOT_IDLE_MS, trimWhenIdle, type IdleTrimmable } from './slot_trim.js';
import { noteGarbage, SLOT_HEAP_BYTES } from '../util/heap_settle.js';
import { ESHUTDOWN } from '../util/errno.js';
import { Ring } from '../util/ring.js';
import type { Transport, TransportHost, Written } from './transport.js';
import { validate, type ExportLimits } from './validate.js';
import { writeSimpleReply } from './wire.js';

const E = constants.errno;

const enum SlotState {
  Free,
  Payload,
  InFlight,
  Replying,
}

/**
 * After the server shuts a connection down (hot-remove, server close), requests that still
 * arrive are answered with ESHUTDOWN for this long before our side of the stream ends: a
 * client that sent one just before (the kernel, for one) gets an answer instead of none.
 */
export const SHUTDOWN_REFUSE_MS = 100;
/** Structured READs at least this long look for holes first and send them as OFFSET_HOLE. */
export const HOLE_SCAN_MIN = 256 * 1024;
/** Extents one READ is split into, at most; the rest is sent as data. */
const READ_EXTENTS = 16;
/**
 * Request slots a connection keeps once idle. Slots are made as requests need them (up to the
 * depth) and those above this are dropped after SLOT_IDLE_MS without work: a slot with its
 * buffers and bound callbacks is about 1 KiB of heap, and 128 of them per idle connection would
 * be most of what thousands of idle connections cost.
 */
const IDLE_SLOTS = 4;

class Slot {
  state = SlotState.Free;
  type = 0;
  flags = 0;
  offset = 0;
  length = 0;
  errno = 0;
  buf: Buffer | null = null;
  /** Holes and data of a structured READ, when it was scanned. */
  extents: Extent[] | null = null;
  readonly cookie: Buffer;
  /** The request's offset field as sent: extended replies echo it byte for byte. */
  readonly offsetRaw: Buffer;
  /** Room for the largest header we write per request: an extended chunk header plus a u64. */
  readonly hdr: Buffer;
  readonly hdrDone: Buffer;
  readonly hdrData: Buffer;
  readonly io: BdevIo;
  readonly onWritten: () => void;
  /** Budget bytes this request holds (its buffer, and a bounce buffer when unaligned). */
  charge = 0;
  /** A READ or WRITE longer than IO_CHUNK, carried out in pieces of the slot's buffer. */
  pieces = false;
  /** Bytes of a request in pieces already done, and the length of the piece under way. */
  pos = 0;
  pieceLen = 0;
  /** A WRITE piece is being written while the rest of its payload waits. */
  ioBusy = false;
  /** A simple-reply stream was under way: this slot's first piece waits to be sent. */
  deferredPiece = false;
  /** A piece of a streamed READ reply (not its last) has been sent. */
  readonly piece: Written;

  constructor(owner: Transmission, style: ReplyStyle) {
    // One small allocation for the three: each ArrayBuffer of its own costs far more than its bytes.
    const mem = Buffer.alloc(64);
    this.hdr = mem.subarray(0, 48);
    this.cookie = mem.subarray(48, 56);
    this.offsetRaw = mem.subarray(56, 64);
    // Bound once per slot: no closure per request.
    this.io = newIo(() => owner.onIoDone(this));
    this.onWritten = (): void => owner.release(this);
    this.piece = { onWritten: (): void => owner.pieceSent(this) };
    this.hdrDone = this.hdr.subarray(0, style === ReplyStyle.Extended ? 32 : 16);
    this.hdrData = this.hdr.subarray(0, style === ReplyStyle.Simple ? 16 : style === ReplyStyle.Structured ? 28 : 40);
  }
}

export interface TransmissionOptions {
  maxPayload: number;
  /** Requests in flight per connection. */
  depth: number;
  pool: BufferPool;
  log: Logger;
  style: ReplyStyle;
  /** Ids of the metadata contexts selected for this export (base:allocation, qemu:allocation-depth). */
  metaContexts: readonly number[];
  /** True once the server is shutting down: new requests get ESHUTDOWN. */
  closing(): boolean;
  /** The server-wide memory budget (default: one of its own, of the default size). */
  budget?: MemoryBudget;
  /** The server accepted the socket itself and nobody else holds it (see TransportOptions.owned). */
  ownsSocket?: boolean;
}

export class Transmission implements RequestSink, TransportHost, IdleTrimmable {
  readonly #transport: Transport;
  readonly #x: Export;
  /** Every request goes through it: aligned ones straight to the bdev, others bounced. */
  readonly #bdev: UnalignedAdapter;
  readonly #limits: ExportLimits;
  readonly #opts: TransmissionOptions;
  readonly #style: ReplyStyle;
  readonly #log: Logger;
  readonly #framer: RequestFramer;
  readonly #free: Slot[] = [];
  /** Slots made so far (free or busy); at most the depth. */
  #made = 0;
  /** Registered with the idle trimmer, which has not visited since. */
  #trimQueued = false;
  #busy = 0;
  #payloadSlot: Slot | null = null;
  readonly #account: BudgetAccount;
  /** What the request admitted last will be charged (admit() runs just before request()). */
  #admitted = 0;
  /** With simple replies, the READ whose reply is being streamed: nothing may come between its bytes. */
  #streamer: Slot | null = null;
  /** Replies ready while #streamer streams, in order. */
  readonly #deferred = new Ring<Slot>();
  #ending = false;
  /** The server shut this connection down: new requests get ESHUTDOWN until input stops. */
  #refusing = false;
  #dead = false;
  /** When bytes last arrived or the last request in flight was answered (performance.now()). */
  #lastActive = performance.now();
  #resolveDone: (() => void) | null = null;
  /** Resolves when the socket is closed and every request has released its buffers. */
  readonly done: Promise<void>;

  constructor(sock: Duplex, x: Export, opts: TransmissionOptions, leftover: Buffer | null) {
    this.#x = x;
    this.#bdev = unalignedAdapter(x.bdev);
    this.#opts = opts;
    this.#style = opts.style;
    this.#log = opts.log;
    const extended = opts.style === ReplyStyle.Extended;
    this.#limits = {
      flags: x.flagsFor(opts.style !== ReplyStyle.Simple),
      size: x.size,
      minBlock: x.minBlock,
      maxPayload: opts.maxPayload,
      extended,
      blockStatus: opts.metaContexts.length > 0,
    };
    // A rejected payload up to twice the limit is read and dropped to stay in sync; beyond, we
    // hang up. With extended headers the spec asks for a hang-up above the limit itself.
    this.#framer = new RequestFramer(this, extended ? opts.maxPayload : 2 * opts.maxPayload, extended);
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    x.stats.connections++;
    // A kernel device's export grows or shrinks with its bdev once the kernel has been told.
    const unsubscribe = x.onSize((size) => {
      this.#limits.size = size;
    });
    void this.done.then(unsubscribe);
    this.#account = (opts.budget ?? new MemoryBudget()).account(() => {
      // Memory came back for the request we refused: parse it and read on.
      if (this.#dead) return;
      this.#framer.resume();
      this.#transport.resume();
    });
    this.#transport = openTransport(sock, this, { pool: opts.pool, log: this.#log, leftover, owned: opts.ownsSocket === true });
    this.#transport.start();
  }

  get inflight(): number {
    return this.#busy;
  }
  /** Request slots this connection holds now (free or busy), for tests and diagnostics. */
  get slots(): number {
    return this.#made;
  }

  /** How long the connection has been idle at `now` (performance.now()): 0 while a request is in flight. */
  idleFor(now: number): number {
    if (this.#busy > 0 || this.#payloadSlot !== null) return 0;
    return now - this.#lastActive;
  }
  /** 'native' when the socket's bytes move through the addon (plain TCP and unix sockets). */
  get transportKind(): 'native' | 'stream' {
    return this.#transport.kind;
  }

  /**
   * The server's side of a shutdown: answers requests in flight, answers those that arrive in
   * the next SHUTDOWN_REFUSE_MS with ESHUTDOWN (as the protocol asks), then closes.
   */
  shutdown(): void {
    if (this.#refusing || this.#ending) return;
    this.#refusing = true;
    setTimeout(() => {
      this.#stopInput();
    }, SHUTDOWN_REFUSE_MS).unref();
  }

  /** No more requests (DISC, end of the refuse window): answer those in flight, then close. */
  #stopInput(): void {
    this.#framer.stop();
    this.#ending = true;
    this.#maybeFinish();
  }

  /** Drop the client now; in-flight I/O still completes before its buffers are released. */
  destroy(): void {
    this.#transport.destroy();
  }

  // TransportHost
  get framer(): RequestFramer {
    return this.#framer;
  }

  input(buf: Buffer, start: number, end: number): number {
    this.#lastActive = performance.now();
    if (this.#framer.stopped) return end - start; // after DISC: bytes are ignored
    const used = this.#framer.push(buf, start, end);
    return this.#framer.stopped ? end - start : used;
  }

  readDone(): void {
    kickSubmissions();
  }

  inputEnded(): void {
    // The client will send nothing more; finish what it asked for.
    this.#framer.stop();
    this.#ending = true;
    this.#dropPartialWrite();
    this.#maybeFinish();
  }

  closed(): void {
    this.#dead = true;
    this.#framer.stop();
    this.#dropPartialWrite();
    // Replies held behind a streamed one will never be sent.
    this.#streamer = null;
    this.#sendDeferred();
    this.#maybeFinish();
  }

  // A WRITE whose payload was cut short by the disconnect never reaches the bdev.
  #dropPartialWrite(): void {
    const p = this.#payloadSlot;
    if (p !== null && p.state === SlotState.Payload) {
      this.#payloadSlot = null;
      if (!p.ioBusy) this.release(p); // else when its piece is written
    }
  }

  #newSlot(): Slot {
    this.#made++;
    return new Slot(this, this.#style);
  }

  trimIdleSlots(now: number): boolean {
    if (!this.#dead && this.idleFor(now) < SLOT_IDLE_MS) return false; // busy, or not idle long enough yet
    const drop = this.#dead ? this.#free.length : this.#free.length - IDLE_SLOTS;
    if (drop > 0) {
      this.#free.length -= drop;
      this.#made -= drop;
      noteGarbage(drop * SLOT_HEAP_BYTES);
    }
    this.#trimQueued = false;
    return true;
  }

  // RequestSink
  hasFreeSlot(): boolean {
    return this.#free.length > 0 || this.#made < this.#opts.depth;
  }

  admit(type: number, _flags: number, offset: number, length: number, payload: boolean): boolean {
    const charge =
      (type === NBD_CMD.READ || (type === NBD_CMD.WRITE && payload)) && length <= this.#opts.maxPayload && length > 0
        ? ioCharge(offset, length, this.#x.bdev.blockSize)
        : 0;
    if (!this.#account.take(charge)) return false;
    this.#admitted = charge;
    return true;
  }

  request(type: number, flags: number, src: Buffer, at: number, offset: number, length: number, payload: boolean): Buffer | null {
    if (type === NBD_CMD.DISC) {
      this.#log.debug('client sent NBD_CMD_DISC');
      this.#stopInput();
      return null;
    }
    const s = this.#free.pop() ?? this.#newSlot();
    this.#busy++;
    s.charge = this.#admitted;
    this.#admitted = 0;
    s.pos = 0;
    s.type = type;
    s.flags = flags;
    s.offset = offset;
    s.length = length;
    s.extents = null;
    copy8(src, at, s.cookie);
    copy8(src, at + 8, s.offsetRaw);
    s.errno = this.#refusing || this.#opts.closing() ? ESHUTDOWN : validate(type, flags, offset, length, this.#limits);
    if (payload) {
      s.state = SlotState.Payload;
      this.#payloadSlot = s;
      // Any payload but a valid WRITE's is read and dropped, then answered with EINVAL.
      if (type !== NBD_CMD.WRITE && s.errno === 0) s.errno = E.EINVAL;
      if (s.errno !== 0) return null;
      s.pieces = length > IO_CHUNK;
      s.buf = this.#opts.pool.get(Math.min(length, IO_CHUNK));
      return s.buf;
    }
    this.#dispatch(s);
    return null;
  }

  payloadDone(): void {
    const s = this.#payloadSlot as Slot;
    this.#payloadSlot = null;
    this.#dispatch(s);
  }

  /** A full piece of a long WRITE's payload: write it, then let the next one in. */
  payloadPiece(filled: number): void {
    const s = this.#payloadSlot as Slot;
    const io = s.io;
    io.type = IoType.Write;
    io.offset = s.offset + s.pos;
    io.length = filled;
    io.buf = s.buf;
    io.flags = (s.flags & NBD_CMD_FLAG_FUA) !== 0 ? IoFlag.Fua : 0; // every piece: the acknowledgement covers them all
    s.pieceLen = filled;
    s.ioBusy = true;
    this.#bdev.submit(io);
  }

  #writePieceDone(s: Slot): void {
    s.ioBusy = false;
    if (this.#payloadSlot !== s) {
      this.release(s);
      return;
    } // the payload was cut short
    if (s.io.result !== 0) {
      s.errno = -s.io.result;
      this.#framer.payloadContinue(null); // the rest is read and dropped; the reply says why
    } else {
      s.pos += s.pieceLen;
      this.#framer.payloadContinue(s.buf);
    }
    if (!this.#dead) this.#transport.resume();
  }

  protocolError(reason: string): void {
    this.#log.info({ reason }, 'protocol violation; closing the connection');
    this.#transport.destroy();
  }

  #dispatch(s: Slot): void {
    if (s.errno !== 0) {
      this.#reply(s, s.errno);
      return;
    }
    const io = s.io;
    io.offset = s.offset;
    io.length = s.length;
    io.flags = ioFlagsOf(s.flags);
    io.buf = null;
    s.state = SlotState.InFlight;
    switch (s.type) {
      case NBD_CMD.READ:
        if (s.length > IO_CHUNK) {
          s.pieces = true;
          s.buf = this.#opts.pool.get(IO_CHUNK);
          this.#readPiece(s);
          return;
        }
        if (
          this.#style !== ReplyStyle.Simple &&
          s.length >= HOLE_SCAN_MIN &&
          (s.flags & NBD_CMD_FLAG_DF) === 0 &&
          hasBlockStatus(this.#x.bdev)
        ) {
          void this.#scanThenRead(s);
          return;
        }
        io.type = IoType.Read;
        s.buf = this.#opts.pool.get(s.length);
        io.buf = s.buf;
        break;
      case NBD_CMD.WRITE:
        // The last (or only) piece; the earlier ones are written already.
        io.type = IoType.Write;
        io.buf = s.buf;
        io.offset = s.offset + s.pos;
        io.length = s.length - s.pos;
        break;
      case NBD_CMD.FLUSH:
        io.type = IoType.Flush;
        io.offset = 0;
        io.length = 0;
        break;
      case NBD_CMD.TRIM:
        io.type = IoType.Unmap;
        break;
      case NBD_CMD.WRITE_ZEROES:
        io.type = IoType.WriteZeroes;
        break;
      case NBD_CMD.CACHE:
        queueMicrotask(() => this.#reply(s, 0));
        return; // a hint; nothing to warm
      case NBD_CMD.BLOCK_STATUS:
        void this.#blockStatus(s);
        return;
      default:
        this.#reply(s, E.EINVAL);
        return; // validate() lets no other command through
    }
    this.#bdev.submit(io);
  }

  // Large structured READ: find holes first; an all-hole range is answered without reading.
  async #scanThenRead(s: Slot): Promise<void> {
    const io = s.io;
    const [ext] = (await contextExtents(
      this.#x.bdev,
      s.offset,
      s.length,
      [META_ID_BASE_ALLOCATION],
      READ_EXTENTS,
      2 ** 32 - this.#x.minBlock,
    )) as [Extent[]];
    if (this.#dead) {
      this.release(s);
      return;
    }
    const covered = ext.reduce((n, e) => n + e.length, 0);
    if (covered < s.length) ext.push({ length: s.length - covered, flags: 0 });
    s.extents = ext;
    if (ext.length === 1 && ((ext[0] as Extent).flags & NBD_STATE_ZERO) !== 0) {
      this.#reply(s, 0);
      return;
    } // all zero
    io.type = IoType.Read;
    io.offset = s.offset;
    io.length = s.length;
    io.flags = 0;
    s.buf = this.#opts.pool.get(s.length);
    io.buf = s.buf;
    this.#bdev.submit(io);
  }

  async #blockStatus(s: Slot): Promise<void> {
    const max = (s.flags & NBD_CMD_FLAG_REQ_ONE) !== 0 ? 1 : MAX_EXTENTS;
    const maxExtent = this.#style === ReplyStyle.Extended ? 2 ** 52 : 2 ** 32 - Math.max(this.#x.minBlock, 512);
    const ids = this.#opts.metaContexts;
    const lists = await contextExtents(this.#x.bdev, s.offset, s.length, ids, max, maxExtent);
    if (this.#dead) {
      this.release(s);
      return;
    }
    s.state = SlotState.Replying;
    // One chunk per selected context; DONE and the slot's release ride on the last.
    const last = ids.length - 1;
    ids.forEach((id, i) => {
      const b = encodeBlockStatus(this.#style, s.cookie, s.offsetRaw, id, lists[i] as Extent[], i === last);
      this.#transport.write(b, 0, b.length, i === last ? s : null);
    });
  }

  /** Bdev completion (bound per slot). */
  onIoDone(s: Slot): void {
    s.io.buf = null;
    if (s.ioBusy) {
      this.#writePieceDone(s);
      return;
    }
    if (this.#dead) {
      this.release(s);
      return;
    }
    if (s.pieces && s.type === NBD_CMD.READ) {
      this.#readPieceDone(s);
      return;
    }
    this.#reply(s, -s.io.result);
  }

  #readPiece(s: Slot): void {
    const io = s.io;
    s.pieceLen = Math.min(IO_CHUNK, s.length - s.pos);
    io.type = IoType.Read;
    io.offset = s.offset + s.pos;
    io.length = s.pieceLen;
    io.buf = s.buf;
    s.state = SlotState.InFlight;
    this.#bdev.submit(io);
  }

  #readPieceDone(s: Slot): void {
    const errno = -s.io.result;
    if (errno === 0) {
      this.#sendPiece(s);
      return;
    }
    if (s.pos === 0) {
      this.#reply(s, errno);
      return;
    } // nothing sent yet: an ordinary error reply
    this.#log.debug({ cookie: s.cookie.toString('hex'), offset: s.offset + s.pos, errno }, 'READ failed after part of its reply was sent');
    if (this.#style === ReplyStyle.Simple) {
      // A simple reply already promised success and cannot take it back: the protocol asks
      // for a hard disconnect.
      this.#streamer = null;
      this.#transport.destroy();
      this.release(s);
      return;
    }
    s.state = SlotState.Replying;
    this.#send(encodeErrorChunk(this.#style, s.cookie, s.offsetRaw, toNbdError(errno, s.flags), errnoMessage(errno)), s);
  }

  /** One piece of a long READ's reply; the next is read once this one has left. */
  #sendPiece(s: Slot): void {
    const t = this.#transport;
    const last = s.pos + s.pieceLen === s.length;
    if (this.#style === ReplyStyle.Simple) {
      if (s.pos === 0) {
        if (this.#streamer !== null) {
          s.deferredPiece = true;
          this.#deferred.push(s);
          return;
        }
        this.#streamer = s;
        writeSimpleReply(s.hdr, NBD_ERR.SUCCESS, s.cookie);
        t.write(s.hdr, 0, 16, null);
      }
    } else {
      const n = writeDataChunkHeader(s.hdr, this.#style, last, s.cookie, s.offsetRaw, s.offset + s.pos, s.pieceLen);
      t.write(s.hdr, 0, n, null);
    }
    s.state = last ? SlotState.Replying : SlotState.InFlight;
    t.write(s.buf as Buffer, 0, s.pieceLen, last ? s : s.piece);
    if (last && this.#streamer === s) {
      this.#streamer = null;
      this.#sendDeferred();
    }
  }

  /** A piece of a streamed READ reply has left: read the next one. */
  pieceSent(s: Slot): void {
    if (this.#dead) {
      this.release(s);
      return;
    }
    s.pos += s.pieceLen;
    this.#readPiece(s);
  }

  // Replies held back while a simple reply was streamed, in the order they became ready.
  #sendDeferred(): void {
    while (this.#streamer === null && this.#deferred.length > 0) {
      const s = this.#deferred.shift();
      if (this.#dead) {
        this.release(s);
        continue;
      }
      if (s.deferredPiece) {
        s.deferredPiece = false;
        this.#sendPiece(s);
      } else this.#reply(s, s.errno);
    }
  }

  #reply(s: Slot, errno: number): void {
    if (this.#streamer !== null && this.#style === ReplyStyle.Simple) {
      // Nothing may come between the bytes of the simple reply being streamed.
      s.errno = errno;
      s.state = SlotState.Replying;
      this.#deferred.push(s);
      return;
    }
    s.state = SlotState.Replying;
    const err = toNbdError(errno, s.flags);
    if (err !== NBD_ERR.SUCCESS) {
      this.#log.debug(
        { cookie: s.cookie.toString('hex'), cmd: NBD_CMD_NAME[s.type] ?? s.type, offset: s.offset, length: s.length, errno },
        'request failed',
      );
    }
    if (this.#dead) {
      this.release(s);
      return;
    }
    if (this.#style === ReplyStyle.Simple) {
      writeSimpleReply(s.hdr, err, s.cookie);
      if (s.type === NBD_CMD.READ && err === NBD_ERR.SUCCESS && s.buf !== null) this.#sendData(s.hdrData, s);
      else this.#send(s.hdrDone, s);
      return;
    }
    if (err !== NBD_ERR.SUCCESS) {
      this.#send(encodeErrorChunk(this.#style, s.cookie, s.offsetRaw, err, errnoMessage(errno)), s);
    } else if (s.type !== NBD_CMD.READ) {
      writeDoneReply(s.hdr, this.#style, s.cookie, s.offsetRaw);
      this.#send(s.hdrDone, s);
    } else if (s.extents !== null) {
      this.#sendExtents(s, s.extents);
    } else {
      writeDataChunkHeader(s.hdr, this.#style, true, s.cookie, s.offsetRaw, s.offset, s.length);
      this.#sendData(s.hdrData, s);
    }
  }

  // A READ split into data and zero (OFFSET_HOLE) chunks; DONE rides on the last one.
  #sendExtents(s: Slot, ext: Extent[]): void {
    let pos = s.offset;
    const last = ext.length - 1;
    const t = this.#transport;
    ext.forEach((e, i) => {
      const done = i === last;
      if ((e.flags & NBD_STATE_ZERO) !== 0) {
        const b = encodeHoleChunk(this.#style, done, s.cookie, s.offsetRaw, pos, e.length);
        t.write(b, 0, b.length, done ? s : null);
      } else {
        const h = Buffer.alloc(48);
        const n = writeDataChunkHeader(h, this.#style, done, s.cookie, s.offsetRaw, pos, e.length);
        t.write(h, 0, n, null);
        t.write(s.buf as Buffer, pos - s.offset, e.length, done ? s : null);
      }
      pos += e.length;
    });
  }

  /** The slot's buffers are released once the piece that carries it has been sent. */
  #send(b: Buffer, s: Slot): void {
    this.#transport.write(b, 0, b.length, s);
  }

  #sendData(header: Buffer, s: Slot): void {
    this.#transport.write(header, 0, header.length, null);
    this.#transport.write(s.buf as Buffer, 0, s.length, s);
  }

  /** Returns a slot and its buffer to the pools (write callback, or completion on a dead socket). */
  release(s: Slot): void {
    if (s.state === SlotState.Free) return;
    if (s.buf !== null) {
      this.#opts.pool.put(s.buf);
      s.buf = null;
    }
    s.extents = null;
    s.pieces = false;
    s.ioBusy = false;
    s.deferredPiece = false;
    if (s.charge > 0) {
      const c = s.charge;
      s.charge = 0;
      this.#account.release(c);
    }
    s.state = SlotState.Free;
    this.#free.push(s);
    if (--this.#busy === 0) {
      this.#lastActive = performance.now();
      if (this.#free.length > IDLE_SLOTS && !this.#trimQueued) {
        this.#trimQueued = true;
        trimWhenIdle(this);
      }
    }
    if (!this.#dead) {
      // A header parked for want of a slot goes first, then the bytes held behind it.
      this.#framer.resume();
      this.#transport.resume();
    }
    this.#maybeFinish();
  }

  #maybeFinish(): void {
    if (this.#busy > 0) return;
    if (this.#dead) {
      this.#account.close();
      if (this.#resolveDone !== null) this.#x.stats.connections--;
      const r = this.#resolveDone;
      this.#resolveDone = null;
      r?.();
    } else if (this.#ending && this.#payloadSlot === null) {
      this.#transport.end(); // everything is answered
    }
  }
}

/**
 * The bdev's flags for a request's NBD flags. validate() let through only what the export
 * advertised, and the export advertised only what the bdev declares.
 */
function ioFlagsOf(cmdFlags: number): number {
  return (
    ((cmdFlags & NBD_CMD_FLAG_FUA) !== 0 ? IoFlag.Fua : 0) |
    ((cmdFlags & NBD_CMD_FLAG_NO_HOLE) !== 0 ? IoFlag.NoHole : 0) |
    ((cmdFlags & NBD_CMD_FLAG_FAST_ZERO) !== 0 ? IoFlag.FastZero : 0)
  );
}

// Buffer#copy from an offset makes a typed-array view per call: two per request, the main source
// of garbage on the 4k path. Eight bytes by hand allocate nothing.
function copy8(src: Buffer, at: number, dst: Buffer): void {
  for (let i = 0; i < 8; i++) dst[i] = src[at + i] as number;
}

const MESSAGES = new Map<number, string>([
  [E.EINVAL, 'invalid request'],
  [E.ENOSPC, 'beyond the end of the export'],
  [E.EPERM, 'the export is read-only'],
  [E.EROFS, 'the export is read-only'],
  [E.EIO, 'I/O error'],
  [E.ENOTSUP, 'zeroing would not be fast'],
  [E.EOPNOTSUPP, 'zeroing would not be fast'],
  [ESHUTDOWN, 'the server is shutting down'],
]);

function errnoMessage(errno: number): string {
  return MESSAGES.get(errno) ?? `error ${errno}`;
}
