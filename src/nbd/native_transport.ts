// The transport for plain TCP and unix sockets: recv/sendmsg through the addon (SockIo), without
// Node's stream machinery.
// Memory: every connection reads into one receive buffer per pool (so per process), and the
// requests of a read are parsed from it in place before the next read of any connection. What
// the host could not take yet (no free slot, or the memory budget said wait) is copied into a
// pooled buffer of its own size and given back once consumed, so an idle connection holds no
// buffer at all. A WRITE's payload is still read straight into its aligned buffer (readv).
import type net from 'node:net';
import { constants } from 'node:os';
import type { BufferPool } from '../bdev/buffers.js';
import type { Logger } from '../log.js';
import { native, SockEvent, type SockIoHandle } from '../native.js';
import { RECV_BUFFER, SharedRecv } from './shared_recv.js';
import {
  LINGER_MS,
  WRITE_BACKLOG_LIMIT,
  type HandleWithFd,
  type Transport,
  type TransportHost,
  type TransportOptions,
  type Written,
} from './transport.js';

const E = constants.errno;

/** Reads per readable event at most, so one busy client cannot starve the loop. */
const READS_PER_EVENT = 16;
/** Reply pieces the write ring holds at first; it doubles when a batch needs more. */
const QUEUE_START = 16;

const EMPTY = Buffer.alloc(0);

export class NativeTransport implements Transport {
  readonly kind = 'native';
  readonly #sock: net.Socket;
  readonly #host: TransportHost;
  readonly #pool: BufferPool;
  readonly #log: Logger;
  readonly #io: SockIoHandle;
  readonly #recv: SharedRecv;
  /** Input the host has not taken yet, copied out of the shared buffer: held[hStart..hEnd). */
  #held: Buffer | null = null;
  #hStart = 0;
  #hEnd = 0;
  /** The host is being fed from #held: a nested resume() must not feed the same bytes again. */
  #feeding = false;
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
  /** Close the net.Socket (the fd we did not dup) once its queue is out: see TransportOptions.owned. */
  readonly #owned: boolean;
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

  constructor(sock: net.Socket, fd: number, host: TransportHost, o: TransportOptions) {
    this.#sock = sock;
    this.#host = host;
    this.#pool = o.pool;
    this.#log = o.log;
    this.#owned = o.owned;
    const cap = QUEUE_START;
    this.#qBufs = new Array<Buffer | null>(cap).fill(null);
    this.#qOff = new Uint32Array(cap);
    this.#qLen = new Uint32Array(cap);
    this.#qOwner = new Array<Written | null>(cap).fill(null);
    this.#qMask = cap - 1;
    // Throws for anything that is not a stream socket: the caller falls back to the stream.
    this.#io = new (native().SockIo)(fd, this.#qBufs, this.#qOff, this.#qLen, this.#onEvent);
    this.#recv = SharedRecv.acquire(o.pool);

    // From here on the net.Socket reads nothing: whatever it already holds is taken over below.
    const h = (sock as unknown as { _handle: HandleWithFd })._handle;
    const stopReading = (): void => {
      h.reading = false;
      h.readStop?.();
    };
    stopReading();
    let pending = o.leftover === null ? 0 : o.leftover.length;
    const early: Buffer[] = o.leftover === null ? [] : [o.leftover];
    if (sock.readableLength > 0) {
      for (let c = sock.read() as Buffer | null; c !== null; c = sock.read() as Buffer | null) {
        early.push(c);
        pending += c.length;
      }
      stopReading(); // read() asks the handle for more; nothing has been read meanwhile
    }
    if (pending > 0) {
      const held = o.pool.get(pending);
      for (const c of early) {
        c.copy(held, this.#hEnd);
        this.#hEnd += c.length;
      }
      this.#held = held;
    }
    if (sock.writableLength > 0) {
      this.#streamDrained = false;
      sock.write(EMPTY, () => {
        this.#streamDrained = true;
        this.#dropStream();
        this.#scheduleFlush();
      });
    }
    sock.on('close', this.#onSockClose);
    sock.on('error', this.#onSockError);
    this.#dropStream();
  }

  start(): void {
    if (this.#held !== null) this.#feedHeld();
    this.#updatePoll();
  }

  // An owned net.Socket has nothing left to do once its queue is out: closing it gives back its
  // fd (our dup keeps the connection) and its stream state.
  #dropStream(): void {
    if (!this.#owned || !this.#streamDrained || this.#closed) return;
    this.#sock.off('close', this.#onSockClose);
    this.#sock.destroy();
  }

  // ---- input

  readonly #onEvent = (events: number): void => {
    if (this.#closed) return;
    // libuv saw a socket error (it has stopped polling): the connection is broken.
    if ((events & SockEvent.Error) !== 0) {
      this.#fail(-E.ECONNRESET, 'socket error');
      return;
    }
    if ((events & SockEvent.Writable) !== 0) this.#flushWrites();
    if ((events & SockEvent.Readable) !== 0) this.#readSome();
  };

  #canRead(): boolean {
    return !this.#closed && this.#held === null && !this.#writePaused && !this.#eof;
  }

  #readSome(): void {
    const framer = this.#host.framer;
    const recv = this.#recv;
    // Reads happen only from the poll callback, never inside a parse; this guards that.
    if (recv.busy) throw new Error('aionbd: the shared receive buffer was read into during a parse');
    const buf = recv.buf;
    for (let i = 0; i < READS_PER_EVENT && this.#canRead(); i++) {
      let n: number;
      let want: number;
      const dst = framer.payloadDst;
      if (dst !== null) {
        // The rest of this WRITE payload piece straight into its pooled buffer (no copy), and
        // whatever follows it into the receive buffer, in one system call.
        const left = framer.payloadRoom;
        want = left + RECV_BUFFER;
        n = this.#io.readv(dst, framer.payloadPos, left, buf, 0, RECV_BUFFER);
        if (n > 0) {
          framer.payloadReceived(Math.min(n, left));
          if (n > left && !this.#closed) this.#feedShared(n - left);
          else this.#host.readDone();
        }
      } else {
        want = RECV_BUFFER;
        n = this.#io.read(buf, 0, RECV_BUFFER);
        if (n > 0) this.#feedShared(n);
      }
      // A short read drained the socket: wait for the next readable event.
      if (n > 0) {
        if (n < want) break;
        continue;
      }
      if (n === 0) {
        this.#onEof();
        return;
      }
      if (n === -E.EAGAIN) break;
      this.#fail(n, 'read failed');
      return;
    }
    this.#updatePoll();
  }

  /** Hands shared[0..n) to the host; what it cannot take yet is copied out and held. */
  #feedShared(n: number): void {
    const recv = this.#recv;
    recv.busy = true;
    let used: number;
    try {
      used = this.#host.input(recv.buf, 0, n);
    } finally {
      recv.endParse(); // a connection closed by its own input may have been the last user
    }
    this.#host.readDone();
    if (used < n && !this.#closed) {
      const held = this.#pool.get(n - used);
      recv.buf.copy(held, 0, used, n);
      this.#held = held;
      this.#hStart = 0;
      this.#hEnd = n - used;
    }
  }

  /** Hands the held input to the host; the buffer goes back once all of it is taken. */
  #feedHeld(): void {
    const held = this.#held as Buffer;
    this.#feeding = true;
    try {
      this.#hStart += this.#host.input(held, this.#hStart, this.#hEnd);
    } finally {
      this.#feeding = false;
    }
    this.#host.readDone();
    if (this.#hStart >= this.#hEnd || this.#closed) this.#dropHeld();
  }

  #dropHeld(): void {
    const held = this.#held;
    if (held === null) return;
    this.#held = null;
    this.#hStart = 0;
    this.#hEnd = 0;
    this.#pool.put(held);
  }

  resume(): void {
    if (this.#held === null || this.#closed || this.#feeding) return;
    this.#feedHeld();
    this.#updatePoll();
  }

  #onEof(): void {
    this.#eof = true;
    this.#dropHeld();
    this.#updatePoll();
    if (this.#shutDown) {
      this.destroy();
      return;
    } // both sides are done
    this.#host.inputEnded();
  }

  // ---- output

  write(buf: Buffer, off: number, len: number, owner: Written | null): void {
    if (this.#closed) {
      owner?.onWritten();
      return;
    }
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
      if (n === -E.EAGAIN) {
        this.#waitWritable = true;
        break;
      }
      if (n < 0) {
        this.#fail(n, 'write failed');
        return;
      }
      if (!this.#consume(n)) {
        this.#waitWritable = true;
        break;
      }
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
    if (this.#eof) {
      this.destroy();
      return;
    }
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

  readonly #onSockClose = (): void => {
    this.destroy();
  };
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
    if (!this.#feeding) this.#dropHeld(); // else once the parse of it returns (#feedHeld)
    this.#recv.release();
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
