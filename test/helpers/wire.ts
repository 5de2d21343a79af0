// A raw NBD peer for tests: exact bytes out, exact bytes in, every wait bounded.
import net from 'node:net';

export class RawClient {
  readonly sock: net.Socket;
  /** Received and not yet read: a list, joined only when read, so a 2 GiB reply costs 2 GiB once. */
  #chunks: Buffer[] = [];
  #have = 0;
  #closed = false;
  #waiters: (() => void)[] = [];

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => {
      this.#chunks.push(d);
      this.#have += d.length;
      this.#wake();
    });
    sock.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    sock.on('error', () => {
      /* close follows */
    });
  }

  static connect(path: string, timeoutMs = 5000): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(path);
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error('connect timeout'));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(new RawClient(s));
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  /** TCP, optionally from a given local address (another loopback address is another client). */
  static connectTcp(host: string, port: number, localAddress?: string, timeoutMs = 5000): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port, ...(localAddress !== undefined ? { localAddress } : {}) });
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error('connect timeout'));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(new RawClient(s));
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  get closed(): boolean {
    return this.#closed;
  }
  get buffered(): number {
    return this.#have;
  }

  write(b: Buffer): void {
    this.sock.write(b);
  }

  /** Exactly n bytes, or rejects on close/timeout. */
  async read(n: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.#have < n) {
      if (this.#closed) throw new Error(`connection closed with ${this.#have} of ${n} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${n} bytes (have ${this.#have})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    // Join only the chunks that hold the n bytes.
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const c = this.#chunks[0] as Buffer;
      const take = Math.min(c.length, n - got);
      c.copy(out, got, 0, take);
      got += take;
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    this.#have -= n;
    return out;
  }

  /** Resolves true when the server closes the connection within the time. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return true;
  }

  close(): void {
    this.sock.destroy();
  }
}

const IHAVEOPT = Buffer.from('IHAVEOPT');

export function option(opt: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(16);
  IHAVEOPT.copy(h, 0);
  h.writeUInt32BE(opt, 8);
  h.writeUInt32BE(data.length, 12);
  return Buffer.concat([h, data]);
}

export function goData(name: string, infos: number[] = []): Buffer {
  const n = Buffer.from(name);
  const b = Buffer.alloc(4 + n.length + 2 + 2 * infos.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  b.writeUInt16BE(infos.length, 4 + n.length);
  infos.forEach((t, i) => {
    b.writeUInt16BE(t, 4 + n.length + 2 + 2 * i);
  });
  return b;
}

export interface OptReply {
  magic: bigint;
  opt: number;
  type: number;
  data: Buffer;
}

export async function readOptReply(c: RawClient): Promise<OptReply> {
  const h = await c.read(20);
  const len = h.readUInt32BE(16);
  return { magic: h.readBigUInt64BE(0), opt: h.readUInt32BE(8), type: h.readUInt32BE(12), data: await c.read(len) };
}

export function request(
  type: number,
  opts: { flags?: number; cookie?: Buffer | bigint; offset?: bigint | number; length?: number; payload?: Buffer } = {},
): Buffer {
  const h = Buffer.alloc(28);
  h.writeUInt32BE(0x25609513, 0);
  h.writeUInt16BE(opts.flags ?? 0, 4);
  h.writeUInt16BE(type, 6);
  const c = opts.cookie ?? 1n;
  if (typeof c === 'bigint') h.writeBigUInt64BE(c, 8);
  else c.copy(h, 8);
  h.writeBigUInt64BE(BigInt(opts.offset ?? 0), 16);
  h.writeUInt32BE(opts.length ?? opts.payload?.length ?? 0, 24);
  return opts.payload ? Buffer.concat([h, opts.payload]) : h;
}

export interface SimpleReply {
  magic: number;
  error: number;
  cookie: bigint;
}

export async function readSimpleReply(c: RawClient, timeoutMs = 5000): Promise<SimpleReply> {
  const h = await c.read(16, timeoutMs);
  return { magic: h.readUInt32BE(0), error: h.readUInt32BE(4), cookie: h.readBigUInt64BE(8) };
}

/** Greeting + client flags + GO for `name`; returns size and transmission flags. */
export async function handshakeGo(c: RawClient, name: string): Promise<{ size: bigint; flags: number }> {
  await c.read(18);
  c.write(Buffer.from([0, 0, 0, 3]));
  c.write(option(7, goData(name)));
  let size = -1n,
    flags = 0;
  for (;;) {
    const r = await readOptReply(c);
    if (r.type === 3 && r.data.readUInt16BE(0) === 0) {
      size = r.data.readBigUInt64BE(2);
      flags = r.data.readUInt16BE(10);
    } else if (r.type === 1) break;
    else if (r.type >= 0x80000000) throw new Error(`GO failed: 0x${r.type.toString(16)} ${r.data.toString()}`);
  }
  return { size, flags };
}

export interface Chunk {
  magic: number;
  flags: number;
  type: number;
  cookie: bigint;
  offset?: bigint;
  payload: Buffer;
}

/** One structured (20-byte header) or extended (32-byte header) reply chunk. */
export async function readChunk(c: RawClient, extended = false, timeoutMs = 5000): Promise<Chunk> {
  if (extended) {
    const h = await c.read(32, timeoutMs);
    const len = Number(h.readBigUInt64BE(24));
    return {
      magic: h.readUInt32BE(0),
      flags: h.readUInt16BE(4),
      type: h.readUInt16BE(6),
      cookie: h.readBigUInt64BE(8),
      offset: h.readBigUInt64BE(16),
      payload: await c.read(len, timeoutMs),
    };
  }
  const h = await c.read(20, timeoutMs);
  return {
    magic: h.readUInt32BE(0),
    flags: h.readUInt16BE(4),
    type: h.readUInt16BE(6),
    cookie: h.readBigUInt64BE(8),
    payload: await c.read(h.readUInt32BE(16), timeoutMs),
  };
}

export function extRequest(
  type: number,
  opts: { flags?: number; cookie?: bigint; offset?: bigint | number; length?: bigint | number; payload?: Buffer } = {},
): Buffer {
  const h = Buffer.alloc(32);
  h.writeUInt32BE(0x21e41c71, 0);
  h.writeUInt16BE((opts.flags ?? 0) | (opts.payload ? 0x20 : 0), 4);
  h.writeUInt16BE(type, 6);
  h.writeBigUInt64BE(opts.cookie ?? 1n, 8);
  h.writeBigUInt64BE(BigInt(opts.offset ?? 0), 16);
  h.writeBigUInt64BE(BigInt(opts.length ?? opts.payload?.length ?? 0), 24);
  return opts.payload ? Buffer.concat([h, opts.payload]) : h;
}

/** Meta context option data: export name and queries. */
export function metaData(name: string, queries: string[]): Buffer {
  const parts: Buffer[] = [];
  const n = Buffer.from(name);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(n.length, 0);
  parts.push(head, n);
  const cnt = Buffer.alloc(4);
  cnt.writeUInt32BE(queries.length, 0);
  parts.push(cnt);
  for (const q of queries) {
    const qb = Buffer.from(q);
    const l = Buffer.alloc(4);
    l.writeUInt32BE(qb.length, 0);
    parts.push(l, qb);
  }
  return Buffer.concat(parts);
}

/** Greeting, client flags, then the given options each answered up to its ACK or error. */
export async function negotiateOptions(c: RawClient, opts: [number, Buffer?][]): Promise<OptReply[][]> {
  await c.read(18);
  c.write(Buffer.from([0, 0, 0, 3]));
  const all: OptReply[][] = [];
  for (const [opt, data] of opts) {
    c.write(option(opt, data));
    const replies: OptReply[] = [];
    for (;;) {
      const r = await readOptReply(c);
      replies.push(r);
      if (r.type === 1 || r.type >= 0x80000000) break;
    }
    all.push(replies);
  }
  return all;
}
