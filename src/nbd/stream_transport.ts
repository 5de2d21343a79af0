// The transport for any Duplex the native one cannot carry (TLS, stdio): Node's stream API,
// corked per batch. Node hands each read over as a Buffer of exactly the bytes read; one the host
// cannot take yet is kept (a reference, no copy) until a slot frees, and nothing else is held
// between reads.
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import { LINGER_MS, WRITE_BACKLOG_LIMIT, type Transport, type TransportHost, type Written } from './transport.js';

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

  destroy(): void {
    this.#sock.destroy();
  }
}
