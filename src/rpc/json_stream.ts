// Splits a byte stream into JSON values the way SPDK's server reads rpc.py: no framing, values
// simply follow each other (newlines optional). The scanner keeps its place between chunks,
// so each character is looked at once; a complete value is handed to JSON.parse.
import { StringDecoder } from 'node:string_decoder';

export class JsonStreamError extends Error {
  /** @param parsed values completed earlier in the same chunk: still to be served */
  constructor(
    message: string,
    readonly parsed: unknown[] = [],
  ) {
    super(message);
    this.name = 'JsonStreamError';
  }
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

export class JsonStream {
  readonly #decoder = new StringDecoder('utf8');
  /** Text of the value being scanned that came in earlier chunks (joined once, when it ends). */
  #parts: string[] = [];
  #partsLen = 0;
  #depth = 0;
  #inString = false;
  #escape = false;

  /** @param maxChars the longest value accepted (a request, or a response on the client side) */
  constructor(private readonly maxChars: number) {}

  /** Values completed by this chunk. Throws JsonStreamError on bad JSON or an oversized value. */
  push(chunk: Buffer): unknown[] {
    // Only the new text is scanned, and earlier pieces of an unfinished value are kept as they
    // are: a value sent in many chunks costs its length once, not once per chunk.
    const t = this.#decoder.write(chunk);
    const out: unknown[] = [];
    let start = this.#depth > 0 ? 0 : -1;
    for (let i = 0; i < t.length; i++) {
      const c = t.charCodeAt(i);
      if (this.#inString) {
        if (this.#escape) this.#escape = false;
        else if (c === 0x5c) this.#escape = true;
        else if (c === 0x22) this.#inString = false;
        continue;
      }
      if (this.#depth === 0) {
        if (isSpace(c)) continue;
        // A request is an object, a batch an array: nothing else can start one.
        if (c !== 0x7b && c !== 0x5b)
          throw new JsonStreamError(`unexpected ${JSON.stringify(t[i])} where a JSON object or array should start`, out);
        start = i;
        this.#depth = 1;
      } else if (c === 0x22) {
        this.#inString = true;
      } else if (c === 0x7b || c === 0x5b) {
        this.#depth++;
      } else if ((c === 0x7d || c === 0x5d) && --this.#depth === 0) {
        const tail = t.slice(start, i + 1);
        const text = this.#parts.length === 0 ? tail : this.#parts.join('') + tail;
        this.#parts = [];
        this.#partsLen = 0;
        if (text.length > this.maxChars) throw new JsonStreamError(`a JSON value longer than ${this.maxChars} characters`, out);
        try {
          out.push(JSON.parse(text));
        } catch (err) {
          throw new JsonStreamError((err as Error).message, out);
        }
        start = -1;
      }
    }
    if (start >= 0) {
      this.#parts.push(start === 0 ? t : t.slice(start));
      this.#partsLen += t.length - start;
      if (this.#partsLen > this.maxChars) throw new JsonStreamError(`a JSON value longer than ${this.maxChars} characters`, out);
    }
    return out;
  }
}
