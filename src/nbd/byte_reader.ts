// Awaitable exact reads from a socket, for the handshake only (low volume; copies are fine).
// The data path never uses this: after the handshake the leftover bytes go to the framer.
import type { Duplex } from 'node:stream';

export class EndOfStream extends Error {
  constructor() {
    super('the client closed the connection');
    this.name = 'EndOfStream';
  }
}

/** Bytes we hold before pausing the socket: one maximal option plus slack. */
const HIGH_WATER = 128 * 1024;

export class ByteReader {
  #chunks: Buffer[] = [];
  #have = 0;
  #want = 0;
  #resolve: ((b: Buffer) => void) | null = null;
  #reject: ((e: Error) => void) | null = null;
  #ended: Error | null = null;
  #detached = false;

  constructor(private readonly stream: Duplex) {
    stream.on('data', this.#onData);
    stream.on('end', this.#onEnd);
    stream.on('close', this.#onEnd);
    stream.on('error', this.#onError);
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#chunks.push(chunk);
    this.#have += chunk.length;
    if (this.#have > HIGH_WATER) this.stream.pause();
    this.#tryFulfil();
  };
  readonly #onEnd = (): void => {
    this.#fail(new EndOfStream());
  };
  readonly #onError = (err: Error): void => {
    this.#fail(err);
  };

  #fail(err: Error): void {
    this.#ended ??= err;
    const reject = this.#reject;
    this.#resolve = null;
    this.#reject = null;
    reject?.(err);
  }

  read(n: number): Promise<Buffer> {
    if (this.#ended !== null && this.#have < n) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => {
      this.#want = n;
      this.#resolve = resolve;
      this.#reject = reject;
      this.#tryFulfil();
    });
  }

  #tryFulfil(): void {
    if (this.#resolve === null || this.#have < this.#want) {
      if (this.#resolve !== null && this.stream.isPaused()) this.stream.resume();
      return;
    }
    const all = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks, this.#have);
    const out = all.subarray(0, this.#want);
    const rest = all.subarray(this.#want);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#have = rest.length;
    const resolve = this.#resolve;
    this.#resolve = null;
    this.#reject = null;
    if (this.#have <= HIGH_WATER && this.stream.isPaused() && !this.#detached) this.stream.resume();
    resolve(out);
  }

  /** Stops listening and returns bytes already received beyond the handshake. */
  detach(): Buffer | null {
    this.#detached = true;
    // Without a 'data' listener a flowing stream drops bytes: hold them until the next owner resumes.
    this.stream.pause();
    this.stream.off('data', this.#onData);
    this.stream.off('end', this.#onEnd);
    this.stream.off('close', this.#onEnd);
    this.stream.off('error', this.#onError);
    const rest = this.#have === 0 ? null : Buffer.concat(this.#chunks, this.#have);
    this.#chunks = [];
    this.#have = 0;
    return rest;
  }
}
