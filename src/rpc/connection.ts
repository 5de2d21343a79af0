// One JSON-RPC connection: values parsed as they stream in, answered one after the other (so
// responses keep request order), and flow control both ways. A client that sends requests
// faster than it reads the answers is stopped being read from, so neither the requests waiting
// their turn nor the answers waiting for the client can grow without bound.
import type net from 'node:net';
import type { Logger } from '../log.js';
import { RPC_PARSE_ERROR, type CallContext, type RpcDispatcher } from './dispatcher.js';
import { JsonStream, JsonStreamError } from './json_stream.js';
import { errorResponse, handleMessage, handleRequest } from './protocol.js';

/** Longest request accepted (a load_config of a large setup fits easily). */
export const MAX_REQUEST_CHARS = 16 * 1024 * 1024;
/** Requests parsed and not yet answered, per connection, before it is stopped being read. */
export const MAX_QUEUED_REQUESTS = 256;
/**
 * Reply bytes the client has not taken yet, per connection: above this no further request is
 * answered and none is read until the client reads (one reply may overshoot it once).
 */
export const MAX_UNSENT_REPLY_BYTES = 1024 * 1024;

export class RpcConnection {
  readonly #stream = new JsonStream(MAX_REQUEST_CHARS);
  /** Parsed values waiting their turn. */
  #queue: unknown[] = [];
  #head = 0;
  #pumping = false;
  #paused = false;
  /** The client sent end of stream: end ours once everything is answered. */
  #ended = false;
  /** A parse error to answer after the values before it; then the connection ends. */
  #parseError: string | null = null;
  #waitingDrain: (() => void) | null = null;

  constructor(
    private readonly sock: net.Socket,
    private readonly d: RpcDispatcher,
    private readonly ctx: CallContext,
    private readonly log: Logger,
  ) {
    sock.on('data', this.#onData);
    sock.on('end', this.#onEnd);
    sock.on('drain', this.#onDrain);
    sock.on('close', this.#wake);
  }

  get #queued(): number {
    return this.#queue.length - this.#head;
  }

  readonly #onData = (chunk: Buffer): void => {
    let values: unknown[];
    try {
      values = this.#stream.push(chunk);
    } catch (err) {
      if (!(err instanceof JsonStreamError)) throw err;
      values = err.parsed;
      // As SPDK: a parse error is answered, then the connection is closed (no resync).
      this.#parseError = `Parse error: ${err.message}`;
      this.sock.off('data', this.#onData);
      this.sock.off('end', this.#onEnd);
    }
    for (const v of values) this.#queue.push(v);
    this.#flow();
    void this.#pump();
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    void this.#pump();
  };

  readonly #onDrain = (): void => {
    this.#flow();
    this.#wake();
  };

  readonly #wake = (): void => {
    const w = this.#waitingDrain;
    this.#waitingDrain = null;
    w?.();
  };

  /** Reads on only while both the queue and the unsent replies are within their bounds. */
  #flow(): void {
    if (this.#parseError !== null) {
      // Nothing more is read as requests; what still comes is let through and dropped, so the
      // client's end of stream is seen and the connection can close.
      if (this.#paused) {
        this.#paused = false;
        this.sock.resume();
      }
      return;
    }
    const over = this.#queued >= MAX_QUEUED_REQUESTS || this.sock.writableLength > MAX_UNSENT_REPLY_BYTES;
    if (over && !this.#paused) {
      this.#paused = true;
      this.sock.pause();
      this.log.debug({ queued: this.#queued, unsent: this.sock.writableLength }, 'JSON-RPC client is behind; not reading it');
    } else if (!over && this.#paused) {
      this.#paused = false;
      this.sock.resume();
    }
  }

  /** Resolves once the client has taken enough of its replies (or the connection is gone). */
  async #caughtUp(): Promise<void> {
    while (this.sock.writableLength > MAX_UNSENT_REPLY_BYTES && !this.sock.destroyed) {
      await new Promise<void>((resolve) => {
        this.#waitingDrain = resolve;
      });
    }
  }

  /**
   * A batch's answer is one JSON array, written element by element as each is ready, so a
   * batch of many requests is held back like as many single requests. The bytes are those of
   * the whole array stringified at once; a batch of notifications only gets no answer at all.
   */
  async #answerBatch(batch: unknown[]): Promise<void> {
    let first = true;
    for (const m of batch) {
      await this.#caughtUp();
      if (this.sock.destroyed) return;
      const r = await handleRequest(m, this.d, this.ctx, this.log);
      if (r === null || this.sock.destroyed) continue;
      this.sock.write(`${first ? '[' : ','}${JSON.stringify(r)}`);
      first = false;
    }
    if (!first && !this.sock.destroyed) this.sock.write(']\n');
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    const sock = this.sock;
    try {
      while (this.#queued > 0 && !sock.destroyed) {
        await this.#caughtUp();
        if (sock.destroyed) break;
        const v = this.#queue[this.#head];
        this.#queue[this.#head++] = undefined;
        if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
          this.#queue = this.#queue.slice(this.#head);
          this.#head = 0;
        }
        if (Array.isArray(v) && v.length > 0) {
          await this.#answerBatch(v);
        } else {
          const r = await handleMessage(v, this.d, this.ctx, this.log);
          if (r !== null && !sock.destroyed) sock.write(`${JSON.stringify(r)}\n`);
        }
        this.#flow();
      }
    } finally {
      this.#pumping = false;
    }
    if (sock.destroyed) {
      this.#queue = [];
      this.#head = 0;
      return;
    }
    if (this.#parseError !== null) {
      sock.end(`${JSON.stringify(errorResponse(null, { code: RPC_PARSE_ERROR, message: this.#parseError }))}\n`);
    } else if (this.#ended) {
      sock.end();
    }
  }
}
