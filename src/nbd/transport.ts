// How a Transmission's bytes move: requests in, replies out. Two implementations with the same
// contract:
// - NativeTransport (native_transport.ts), for plain TCP and unix sockets: recv() into one
//   receive buffer shared by every connection, parsed in place; while a WRITE payload is due,
//   one scatter read puts its rest straight into its pooled buffer. Replies queued in a ring and
//   sent with one sendmsg per batch. No Buffer per read, no stream machinery per reply.
// - StreamTransport (stream_transport.ts), for everything else (TLS, stdio, any Duplex): Node's
//   stream API, corked per batch.
// openTransport() (open_transport.ts) picks one.
// Both stop reading while the host has no free request slot, or while more than
// WRITE_BACKLOG_LIMIT reply bytes wait for a client that does not read them, and both release a
// reply's slot only once every byte of it has left (or the connection is gone). An idle
// connection holds no buffer of its own in either.
import type { BufferPool } from '../bdev/buffers.js';
import type { Logger } from '../log.js';
import type { RequestFramer } from './framing.js';

/** Reply bytes queued for the socket before we stop reading requests from it. */
export const WRITE_BACKLOG_LIMIT = 16 * 1024 * 1024;
/** A peer that keeps its half open after we are done is dropped after this long. */
export const LINGER_MS = 1000;

/** A reply piece's owner: released once the piece that carries it has been sent. */
export interface Written {
  readonly onWritten: () => void;
}

export interface TransportHost {
  /** The request parser: its payload state lets a transport read WRITE data in place. */
  readonly framer: RequestFramer;
  /**
   * Bytes buf[start..end) arrived: returns how many were taken (fewer: no free slot now). The
   * bytes may live in a buffer shared with other connections: nothing may refer to them after
   * the call returns (the framer copies what it keeps).
   */
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

export interface TransportOptions {
  pool: BufferPool;
  log: Logger;
  /** Bytes received during the handshake that belong to transmission. */
  leftover: Buffer | null;
  /**
   * The server accepted this socket itself and nobody else holds it: a native transport may
   * close the net.Socket (and its fd) once it has taken the connection over, keeping one fd.
   * A socket handed in by a caller stays open until the connection ends: the caller may still
   * destroy it to drop the connection.
   */
  owned: boolean;
}

/** What we use of a net.Socket's libuv handle (Node's internal TCP/Pipe wrap). */
export interface HandleWithFd {
  fd?: number;
  reading?: boolean;
  readStop?: () => number;
}
