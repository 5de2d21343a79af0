// How a Transmission's bytes move: requests in, replies out. Two implementations with the same
// contract:
// - NativeTransport, for plain TCP and unix sockets: recv() into a reused receive buffer; while
//   a WRITE payload is due, one scatter read puts its rest straight into its pooled buffer and
//   what follows into the receive buffer. Replies queued in a ring and sent with one sendmsg
//   per batch. No Buffer per read, no stream machinery per reply.
// - StreamTransport, for everything else (TLS, stdio, any Duplex): Node's stream API, corked
//   per batch.
// Both stop reading while the host has no free request slot, or while more than
// WRITE_BACKLOG_LIMIT reply bytes wait for a client that does not read them, and both release a
// reply's slot only once every byte of it has left (or the connection is gone).
import net from 'node:net';
import tls from 'node:tls';
import { constants } from 'node:os';
import type { Duplex } from 'node:stream';
import type { BufferPool } from '../bdev/buffers.js';
import type { Logger } from '../log.js';
import { native, SockEvent, type SockIoHandle } from '../native.js';
import type { RequestFramer } from './framing.js';

const E = constants.errno;

/** Reply bytes queued for the socket before we stop reading requests from it. */
export const WRITE_BACKLOG_LIMIT = 16 * 1024 * 1024;
/** The receive buffer of a native connection: the requests of one read land here. */
const RECV_BUFFER = 256 * 1024;
/** Reads per readable event at most, so one busy client cannot starve the loop. */
const READS_PER_EVENT = 16;
/** A peer that keeps its half open after we are done is dropped after this long. */
const LINGER_MS = 1000;

/** A reply piece's owner: released once the piece that carries it has been sent. */
export interface Written { readonly onWritten: () => void }

export interface TransportHost {
  /** The request parser: its payload state lets a transport read WRITE data in place. */
  readonly framer: RequestFramer;
  /** Bytes buf[start..end) arrived: returns how many were taken (fewer: no free slot now). */
  input(buf: Buffer, start: number, end: number): number;
  /**
   * What one read brought has been handed over (input(), or payload read in place): start the
   * requests it completed now, before the next read, so none waits for more bytes.
   */
  readDone(): void;
  /** The client sent end of stream. */
  inputEnded(): void;
  /** The connection is gone; called once. Pieces still queued are released after it. */
  closed(): void;
}

export interface Transport {
  /** Which implementation carries the connection (diagnostics and tests). */
  readonly kind: 'native' | 'stream';
  /** Starts reading (the leftover from the handshake first). Called once, after construction. */
  start(): void;
  /** Queues buf[off..off+len); `owner.onWritten()` runs once it has all been sent or dropped. */
  write(buf: Buffer, off: number, len: number, owner: Written | null): void;
  /** A request slot is free again: take the input held back, then read on. */
  resume(): void;
  /** Everything is answered: send what is queued, then end the stream and close soon after. */
  end(): void;
  /** Drops the connection now. */
  destroy(): void;
}

/** The transport for `sock`: native for a plain TCP or unix socket (unless AIONBD_SOCKET=stream). */
export function openTransport(sock: Duplex, host: TransportHost, pool: BufferPool, log: Logger, leftover: Buffer | null): Transport {
  const fd = nativeFd(sock);
  if (fd !== null) {
    try {
      return new NativeTransport(sock as net.Socket, fd, host, pool, log, leftover);
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'native socket I/O unavailable; using the stream');
    }
  }
  return new StreamTransport(sock, host, log, leftover);
}

interface HandleWithFd { fd?: number; reading?: boolean; readStop?: () => number }

function nativeFd(sock: Duplex): number | null {
  if (process.env['AIONBD_SOCKET'] === 'stream') return null;
  if (!(sock instanceof net.Socket) || sock instanceof tls.TLSSocket || sock.destroyed) return null;
  const h = (sock as unknown as { _handle?: HandleWithFd | null })._handle;
  if (h === null || h === undefined || typeof h.fd !== 'number' || h.fd < 0 || typeof h.readStop !== 'function') return null;
  return h.fd;
}

// -------------------------------------------------------------------------------------------

export class StreamTransport implements Transport {
  readonly kind = 'stream';
  readonly #sock: Duplex;
  readonly #host: TransportHost;
  readonly #log: Logger;
  #held: Buffer | null = null;
  #heldAt = 0;
  #writePaused = false;
  #corked = false;
  #closed = false;
  #leftover: Buffer | null;

  constructor(sock: Duplex, host: TransportHost, log: Logger, leftover: Buffer | null) {
    this.#sock = sock;
    this.#host = host;
    this.#log = log;
    this.#leftover = leftover;
  }

  start(): void {
    const sock = this.#sock;
    sock.on('data', this.#onData);
    sock.on('end', this.#onEnd);
    sock.on('close', this.#onClose);
    sock.on('error', this.#onError);
    sock.on('drain', this.#onDrain);
    const leftover = this.#leftover;
    this.#leftover = null;
    if (leftover !== null) this.#onData(leftover);
    sock.resume();
  }

  readonly #onData = (chunk: Buffer): void => {
    const used = this.#host.input(chunk, 0, chunk.length);
    this.#host.readDone();
    if (used < chunk.length && !this.#closed) {
      this.#held = chunk;
      this.#heldAt = used;
      this.#sock.pause();
    }
  };

  readonly #onEnd = (): void => {
    this.#held = null;
    this.#host.inputEnded();
  };

  readonly #onClose = (): void => {
    this.#closed = true;
    this.#held = null;
    this.#host.closed();
  };

  readonly #onError = (err: NodeJS.ErrnoException): void => {
    this.#log.debug({ err: err.message, code: err.code }, 'connection error');
  };

  readonly #onDrain = (): void => {
    if (!this.#writePaused) return;
    this.#writePaused = false;
    if (this.#held === null && !this.#closed) this.#sock.resume();
  };

  resume(): void {
    const held = this.#held;
    if (held === null || this.#closed) return;
    this.#heldAt += this.#host.input(held, this.#heldAt, held.length);
    this.#host.readDone();
    if (this.#heldAt >= held.length || this.#closed) {
      this.#held = null;
      if (!this.#writePaused && !this.#closed) this.#sock.resume();
    }
  }

  write(buf: Buffer, off: number, len: number, owner: Written | null): void {
    const sock = this.#sock;
    if (!this.#corked) {
      // Replies finished in one completion batch leave in one writev.
      this.#corked = true;
      sock.cork();
      queueMicrotask(this.#uncork);
    }
    const b = off === 0 && len === buf.length ? buf : buf.subarray(off, off + len);
    const ok = owner === null ? sock.write(b) : sock.write(b, owner.onWritten);
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

  end(): void {
    if (this.#sock.writableEnded) return;
    this.#sock.end();
    // Everything is answered; a peer that keeps its half open does not hold us up for long.
    setTimeout(() => this.#sock.destroy(), LINGER_MS).unref();
  }

  destroy(): void { this.#sock.destroy(); }
}

// -------------------------------------------------------------------------------------------

const EMPTY = Buffer.alloc(0);

export class NativeTransport implements Transport {
  readonly kind = 'native';
  readonly #sock: net.Socket;
  readonly #host: TransportHost;
  readonly #pool: BufferPool;
  readonly #log: Logger;
  readonly #io: SockIoHandle;
  /** Received bytes not yet taken by the host live in recv[rStart..rEnd) (only while held). */
  #recv: Buffer;
  #rStart = 0;
  #rEnd = 0;
  /** The host had no free slot for the bytes in recv. */
  #held = false;
  /** More than WRITE_BACKLOG_LIMIT bytes are queued: the client is not reading. */
  #writePaused = false;
  #eof = false;
  #closed = false;
  /** end() was called: shut down our side once the queue is empty. */
  #ending = false;
  #shutDown = false;
  #linger: NodeJS.Timeout | null = null;
  /** Handshake replies may still sit in the net.Socket's queue: ours go after them. */
  #streamDrained = true;
  #pollMask = 0;

  // The write queue: a ring of pieces, each (buffer, offset, length, owner).
  #qBufs: (Buffer | null)[];
  #qOff: Uint32Array;
  #qLen: Uint32Array;
  #qOwner: (Written | null)[];
  #qMask: number;
  #qHead = 0;
  #qCount = 0;
  #queuedBytes = 0;
  #flushScheduled = false;
  #waitWritable = false;

  constructor(sock: net.Socket, fd: number, host: TransportHost, pool: BufferPool, log: Logger, leftover: Buffer | null) {
    this.#sock = sock;
    this.#host = host;
    this.#pool = pool;
    this.#log = log;
    const cap = 256;
    this.#qBufs = new Array<Buffer | null>(cap).fill(null);
    this.#qOff = new Uint32Array(cap);
    this.#qLen = new Uint32Array(cap);
    this.#qOwner = new Array<Written | null>(cap).fill(null);
    this.#qMask = cap - 1;
    // Throws for anything that is not a stream socket: the caller falls back to the stream.
    this.#io = new (native().SockIo)(fd, this.#qBufs, this.#qOff, this.#qLen, this.#onEvent);

    // From here on the net.Socket reads nothing: whatever it already holds is taken over below.
    const h = (sock as unknown as { _handle: HandleWithFd })._handle;
    const stopReading = (): void => { h.reading = false; h.readStop?.(); };
    stopReading();
    let pending = leftover === null ? 0 : leftover.length;
    const early: Buffer[] = leftover === null ? [] : [leftover];
    if (sock.readableLength > 0) {
      for (let c = sock.read() as Buffer | null; c !== null; c = sock.read() as Buffer | null) { early.push(c); pending += c.length; }
      stopReading(); // read() asks the handle for more; nothing has been read meanwhile
    }
    this.#recv = pool.get(Math.max(RECV_BUFFER, pending));
    for (const c of early) { c.copy(this.#recv, this.#rEnd); this.#rEnd += c.length; }
    if (sock.writableLength > 0) {
      this.#streamDrained = false;
      sock.write(EMPTY, () => { this.#streamDrained = true; this.#scheduleFlush(); });
    }
    sock.on('close', this.#onSockClose);
    sock.on('error', this.#onSockError);
  }

  start(): void {
    if (this.#rEnd > 0) this.#feed();
    this.#updatePoll();
  }

  // ---- input

  readonly #onEvent = (events: number): void => {
    if (this.#closed) return;
    // libuv saw a socket error (it has stopped polling): the connection is broken.
    if ((events & SockEvent.Error) !== 0) { this.#fail(-E.ECONNRESET, 'socket error'); return; }
    if ((events & SockEvent.Writable) !== 0) this.#flushWrites();
    if ((events & SockEvent.Readable) !== 0) this.#readSome();
  };

  #canRead(): boolean { return !this.#closed && !this.#held && !this.#writePaused && !this.#eof; }

  #readSome(): void {
    const framer = this.#host.framer;
    for (let i = 0; i < READS_PER_EVENT && this.#canRead(); i++) {
      let n: number;
      let want: number;
      const dst = framer.payloadDst;
      // Not held, so recv is empty: rEnd is 0.
      const room = this.#recv.length - this.#rEnd;
      if (dst !== null) {
        // The rest of this WRITE payload piece straight into its pooled buffer (no copy), and
        // whatever follows it into recv, in one system call.
        const left = framer.payloadRoom;
        want = left + room;
        n = this.#io.readv(dst, framer.payloadPos, left, this.#recv, this.#rEnd, room);
        if (n > 0) {
          framer.payloadReceived(Math.min(n, left));
          if (n > left && !this.#closed) { this.#rEnd += n - left; this.#feed(); } else this.#host.readDone();
        }
      } else {
        want = room;
        n = this.#io.read(this.#recv, this.#rEnd, want);
        if (n > 0) { this.#rEnd += n; this.#feed(); }
      }
      // A short read drained the socket: wait for the next readable event.
      if (n > 0) { if (n < want) break; continue; }
      if (n === 0) { this.#onEof(); return; }
      if (n === -E.EAGAIN) break;
      this.#fail(n, 'read failed');
      return;
    }
    this.#updatePoll();
  }

  /** Hands recv[rStart..rEnd) to the host; what it cannot take yet is held. */
  #feed(): void {
    const used = this.#host.input(this.#recv, this.#rStart, this.#rEnd);
    this.#host.readDone();
    this.#rStart += used;
    if (this.#rStart < this.#rEnd && !this.#closed) {
      this.#held = true;
    } else {
      this.#rStart = 0;
      this.#rEnd = 0;
    }
  }

  resume(): void {
    if (!this.#held || this.#closed) return;
    this.#held = false;
    this.#feed();
    this.#updatePoll();
  }

  #onEof(): void {
    this.#eof = true;
    this.#held = false;
    this.#rStart = 0;
    this.#rEnd = 0;
    this.#updatePoll();
    if (this.#shutDown) { this.destroy(); return; } // both sides are done
    this.#host.inputEnded();
  }

  // ---- output

  write(buf: Buffer, off: number, len: number, owner: Written | null): void {
    if (this.#closed) { owner?.onWritten(); return; }
    if (this.#qCount > this.#qMask) this.#grow();
    const i = (this.#qHead + this.#qCount) & this.#qMask;
    this.#qBufs[i] = buf;
    this.#qOff[i] = off;
    this.#qLen[i] = len;
    this.#qOwner[i] = owner;
    this.#qCount++;
    this.#queuedBytes += len;
    this.#scheduleFlush();
    if (this.#queuedBytes > WRITE_BACKLOG_LIMIT && !this.#writePaused) {
      // The client is not reading its replies: stop reading its requests until it does.
      this.#writePaused = true;
      this.#updatePoll();
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    // Replies finished in one completion batch leave in one sendmsg.
    this.#flushScheduled = true;
    queueMicrotask(this.#flushWrites);
  }

  readonly #flushWrites = (): void => {
    this.#flushScheduled = false;
    if (this.#closed || !this.#streamDrained) return;
    this.#waitWritable = false;
    while (this.#qCount > 0) {
      const n = this.#io.writev(this.#qHead, this.#qCount);
      if (n === -E.EAGAIN) { this.#waitWritable = true; break; }
      if (n < 0) { this.#fail(n, 'write failed'); return; }
      if (!this.#consume(n)) { this.#waitWritable = true; break; }
      if (this.#closed) return;
    }
    if (this.#qCount === 0) {
      if (this.#writePaused) this.#writePaused = false;
      if (this.#ending && !this.#shutDown) this.#shutdown();
    }
    this.#updatePoll();
  };

  /** Drops the first n queued bytes; false when nothing moved (the socket is full). */
  #consume(n: number): boolean {
    let left = n;
    let moved = false;
    while (this.#qCount > 0) {
      const i = this.#qHead;
      const len = this.#qLen[i] as number;
      if (len > left) {
        if (left > 0) {
          this.#qOff[i] = (this.#qOff[i] as number) + left;
          this.#qLen[i] = len - left;
          this.#queuedBytes -= left;
          moved = true;
        }
        break;
      }
      left -= len;
      this.#queuedBytes -= len;
      const owner = this.#qOwner[i] as Written | null;
      this.#qBufs[i] = null;
      this.#qOwner[i] = null;
      this.#qHead = (i + 1) & this.#qMask;
      this.#qCount--;
      moved = true;
      owner?.onWritten(); // may queue more pieces behind these: the ring is consistent here
    }
    return moved;
  }

  #grow(): void {
    const cap = (this.#qMask + 1) * 2;
    const bufs = new Array<Buffer | null>(cap).fill(null);
    const off = new Uint32Array(cap);
    const len = new Uint32Array(cap);
    const owners = new Array<Written | null>(cap).fill(null);
    for (let k = 0; k < this.#qCount; k++) {
      const i = (this.#qHead + k) & this.#qMask;
      bufs[k] = this.#qBufs[i] ?? null;
      off[k] = this.#qOff[i] as number;
      len[k] = this.#qLen[i] as number;
      owners[k] = this.#qOwner[i] ?? null;
    }
    this.#qBufs = bufs;
    this.#qOff = off;
    this.#qLen = len;
    this.#qOwner = owners;
    this.#qMask = cap - 1;
    this.#qHead = 0;
    this.#io.setQueue(bufs, off, len);
  }

  end(): void {
    if (this.#ending || this.#closed) return;
    this.#ending = true;
    if (this.#qCount === 0 && this.#streamDrained) this.#shutdown();
  }

  #shutdown(): void {
    this.#shutDown = true;
    this.#io.shutdown();
    if (this.#eof) { this.destroy(); return; }
    // Everything is answered; a peer that keeps its half open does not hold us up for long.
    this.#linger = setTimeout(() => this.destroy(), LINGER_MS);
    this.#linger.unref();
  }

  // ---- teardown

  #updatePoll(): void {
    if (this.#closed) return;
    const mask = (this.#canRead() ? SockEvent.Readable : 0) | (this.#waitWritable ? SockEvent.Writable : 0);
    if (mask === this.#pollMask) return;
    this.#pollMask = mask;
    this.#io.poll(mask);
  }

  #fail(errno: number, what: string): void {
    if (errno !== -E.ECONNRESET && errno !== -E.EPIPE) this.#log.debug({ errno: -errno }, `connection error: ${what}`);
    this.destroy();
  }

  readonly #onSockClose = (): void => { this.destroy(); };
  readonly #onSockError = (err: NodeJS.ErrnoException): void => {
    this.#log.debug({ err: err.message, code: err.code }, 'connection error');
  };

  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#linger !== null) clearTimeout(this.#linger);
    this.#io.close();
    this.#sock.off('close', this.#onSockClose);
    this.#sock.destroy();
    this.#held = false;
    this.#pool.put(this.#recv);
    this.#recv = EMPTY;
    this.#host.closed();
    // Pieces never sent: nothing refers to their buffers any more.
    while (this.#qCount > 0) {
      const i = this.#qHead;
      const owner = this.#qOwner[i] ?? null;
      this.#qBufs[i] = null;
      this.#qOwner[i] = null;
      this.#qHead = (i + 1) & this.#qMask;
      this.#qCount--;
      owner?.onWritten();
    }
    this.#queuedBytes = 0;
  }
}
