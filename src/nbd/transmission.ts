// The transmission phase of one connection: requests framed from the socket, validated, run
// on the export's bdev, and answered in completion order with simple replies.
import type { Socket } from 'node:net';
import type { Logger } from '../log.js';
import type { BufferPool } from '../bdev/buffers.js';
import { IoType, newIo, type BdevIo } from '../bdev/types.js';
import {
  NBD_CMD, NBD_CMD_FLAG_FUA, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_NAME, NBD_ERR, SIMPLE_REPLY_LEN,
} from './constants.js';
import { ESHUTDOWN, toNbdError } from './errno.js';
import type { Export } from './export.js';
import { RequestFramer, type RequestSink } from './framing.js';
import { validate, type ExportLimits } from './validate.js';
import { writeSimpleReply } from './wire.js';

const enum SlotState { Free, Payload, InFlight, Replying }

/** Reply bytes queued in the socket before we stop reading requests from it. */
const WRITE_BACKLOG_LIMIT = 16 * 1024 * 1024;

class Slot {
  state = SlotState.Free;
  type = 0;
  flags = 0;
  offset = 0;
  length = 0;
  errno = 0;
  buf: Buffer | null = null;
  readonly cookie = Buffer.alloc(8);
  readonly header = Buffer.alloc(SIMPLE_REPLY_LEN);
  readonly io: BdevIo;
  readonly onWritten: () => void;

  constructor(owner: Transmission) {
    // Bound once per slot: no closure per request.
    this.io = newIo(() => owner.onIoDone(this));
    this.onWritten = (): void => owner.release(this);
  }
}

export interface TransmissionOptions {
  maxPayload: number;
  /** Requests in flight per connection. */
  depth: number;
  pool: BufferPool;
  log: Logger;
  /** True once the server is shutting down: new requests get ESHUTDOWN. */
  closing(): boolean;
}

export class Transmission implements RequestSink {
  readonly #sock: Socket;
  readonly #x: Export;
  readonly #limits: ExportLimits;
  readonly #opts: TransmissionOptions;
  readonly #log: Logger;
  readonly #framer: RequestFramer;
  readonly #free: Slot[] = [];
  #busy = 0;
  #payloadSlot: Slot | null = null;
  #held: Buffer | null = null;
  #writePaused = false;
  #corked = false;
  #ending = false;
  #dead = false;
  #resolveDone: (() => void) | null = null;
  /** Resolves when the socket is closed and every request has released its buffers. */
  readonly done: Promise<void>;

  constructor(sock: Socket, x: Export, opts: TransmissionOptions, leftover: Buffer | null) {
    this.#sock = sock;
    this.#x = x;
    this.#opts = opts;
    this.#log = opts.log;
    this.#limits = { flags: x.flags, size: x.size, minBlock: x.minBlock, maxPayload: opts.maxPayload };
    // A rejected WRITE up to twice the limit is read and dropped to stay in sync; beyond, we hang up.
    this.#framer = new RequestFramer(this, 2 * opts.maxPayload);
    for (let i = 0; i < opts.depth; i++) this.#free.push(new Slot(this));
    this.done = new Promise((resolve) => { this.#resolveDone = resolve; });
    sock.on('data', this.#onData);
    sock.on('end', this.#onEnd);
    sock.on('close', this.#onClose);
    sock.on('error', this.#onError);
    sock.on('drain', this.#onDrain);
    if (leftover !== null) this.#onData(leftover);
    sock.resume();
  }

  get inflight(): number { return this.#busy; }

  /** Stop taking requests; answer those in flight, then close. */
  shutdown(): void {
    this.#framer.stop();
    this.#ending = true;
    this.#maybeFinish();
  }

  /** Drop the client now; in-flight I/O still completes before its buffers are released. */
  destroy(): void { this.#sock.destroy(); }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#framer.stopped) return; // after DISC: bytes are ignored
    const used = this.#framer.push(chunk);
    if (used < chunk.length && !this.#framer.stopped) {
      this.#held = used === 0 ? chunk : chunk.subarray(used);
      this.#sock.pause();
    }
  };

  readonly #onEnd = (): void => {
    // The client will send nothing more; finish what it asked for.
    this.#framer.stop();
    this.#held = null;
    this.#ending = true;
    this.#dropPartialWrite();
    this.#maybeFinish();
  };

  readonly #onClose = (): void => {
    this.#dead = true;
    this.#framer.stop();
    this.#held = null;
    this.#dropPartialWrite();
    this.#maybeFinish();
  };

  // A WRITE whose payload was cut short by the disconnect never reaches the bdev.
  #dropPartialWrite(): void {
    const p = this.#payloadSlot;
    if (p !== null && p.state === SlotState.Payload) {
      this.#payloadSlot = null;
      this.release(p);
    }
  }

  readonly #onError = (err: NodeJS.ErrnoException): void => {
    this.#log.debug({ err: err.message, code: err.code }, 'connection error');
  };

  readonly #onDrain = (): void => {
    if (!this.#writePaused) return;
    this.#writePaused = false;
    if (this.#held === null && !this.#dead) this.#sock.resume();
  };

  // RequestSink
  hasFreeSlot(): boolean { return this.#free.length > 0; }

  request(type: number, flags: number, src: Buffer, at: number, offset: number, length: number): Buffer | null {
    if (type === NBD_CMD.DISC) {
      this.#log.debug('client sent NBD_CMD_DISC');
      this.shutdown();
      return null;
    }
    const s = this.#free.pop() as Slot;
    this.#busy++;
    s.type = type;
    s.flags = flags;
    s.offset = offset;
    s.length = length;
    src.copy(s.cookie, 0, at, at + 8);
    s.errno = this.#opts.closing() ? ESHUTDOWN : validate(type, flags, offset, length, this.#limits);
    if (type === NBD_CMD.WRITE) {
      s.state = SlotState.Payload;
      this.#payloadSlot = s;
      if (s.errno !== 0) return null; // the payload is read and dropped
      s.buf = this.#opts.pool.get(length);
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

  protocolError(reason: string): void {
    this.#log.info({ reason }, 'protocol violation; closing the connection');
    this.#held = null;
    this.#sock.destroy();
  }

  #dispatch(s: Slot): void {
    if (s.errno !== 0) { this.#reply(s, s.errno); return; }
    const io = s.io;
    io.offset = s.offset;
    io.length = s.length;
    io.fua = (s.flags & NBD_CMD_FLAG_FUA) !== 0;
    io.noHole = (s.flags & NBD_CMD_FLAG_NO_HOLE) !== 0;
    io.buf = null;
    switch (s.type) {
      case NBD_CMD.READ:
        io.type = IoType.Read;
        s.buf = this.#opts.pool.get(s.length);
        io.buf = s.buf;
        break;
      case NBD_CMD.WRITE: io.type = IoType.Write; io.buf = s.buf; break;
      case NBD_CMD.FLUSH: io.type = IoType.Flush; io.offset = 0; io.length = 0; break;
      case NBD_CMD.TRIM: io.type = IoType.Unmap; break;
      case NBD_CMD.WRITE_ZEROES: io.type = IoType.WriteZeroes; break;
      default: this.#reply(s, 22); return; // validate() lets no other command through
    }
    s.state = SlotState.InFlight;
    this.#x.bdev.submit(io);
  }

  /** Bdev completion (bound per slot). */
  onIoDone(s: Slot): void {
    s.io.buf = null;
    if (this.#dead) { this.release(s); return; }
    this.#reply(s, -s.io.result);
  }

  #reply(s: Slot, errno: number): void {
    s.state = SlotState.Replying;
    const err = toNbdError(errno, s.flags);
    if (err !== NBD_ERR.SUCCESS) {
      this.#log.debug({ cookie: s.cookie.toString('hex'), cmd: NBD_CMD_NAME[s.type] ?? s.type, offset: s.offset, length: s.length, errno }, 'request failed');
    }
    if (this.#dead) { this.release(s); return; }
    const sock = this.#sock;
    if (!this.#corked) {
      // Replies finished in one completion batch leave in one writev.
      this.#corked = true;
      sock.cork();
      queueMicrotask(this.#uncork);
    }
    writeSimpleReply(s.header, err, s.cookie);
    let ok: boolean;
    if (s.type === NBD_CMD.READ && err === NBD_ERR.SUCCESS && s.buf !== null) {
      sock.write(s.header);
      ok = sock.write(s.buf.length === s.length ? s.buf : s.buf.subarray(0, s.length), s.onWritten);
    } else {
      ok = sock.write(s.header, s.onWritten);
    }
    if (!ok && sock.writableLength > WRITE_BACKLOG_LIMIT && !this.#writePaused) {
      // The client is not reading its replies: stop reading its requests until it does.
      this.#writePaused = true;
      sock.pause();
    }
  }

  readonly #uncork = (): void => {
    this.#corked = false;
    this.#sock.uncork();
  };

  /** Returns a slot and its buffer to the pools (write callback, or completion on a dead socket). */
  release(s: Slot): void {
    if (s.state === SlotState.Free) return;
    if (s.buf !== null) { this.#opts.pool.put(s.buf); s.buf = null; }
    s.state = SlotState.Free;
    this.#free.push(s);
    this.#busy--;
    const held = this.#held;
    if (held !== null && !this.#dead) {
      this.#framer.resume();
      const used = this.#framer.push(held);
      if (used === held.length || this.#framer.stopped) {
        this.#held = null;
        if (!this.#writePaused) this.#sock.resume();
      } else {
        this.#held = held.subarray(used);
      }
    }
    this.#maybeFinish();
  }

  #maybeFinish(): void {
    if (this.#busy > 0) return;
    if (this.#dead) {
      const r = this.#resolveDone;
      this.#resolveDone = null;
      r?.();
    } else if (this.#ending && this.#payloadSlot === null && !this.#sock.writableEnded) {
      this.#sock.end();
      // Everything is answered; a peer that keeps its half open does not hold us up for long.
      setTimeout(() => this.#sock.destroy(), 1000).unref();
    }
  }
}
