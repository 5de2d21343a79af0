import type { Bdev } from '../../src/bdev/bdev.js';
import { bufferPool } from '../../src/bdev/buffers.js';
import { IoFlag, IoType, newIo, type BdevIo } from '../../src/bdev/types.js';

/** Submits one I/O and resolves with its result; counts completions to catch doubles. */
export function run(
  bdev: Bdev,
  type: IoType,
  offset: number,
  length: number,
  opts: { buf?: Buffer; flags?: number } = {},
): Promise<{ result: number; io: BdevIo; calls: number }> {
  return new Promise((resolve) => {
    let calls = 0;
    const io = newIo(() => {
      calls++;
      setImmediate(() => resolve({ result: io.result, io, calls }));
    });
    io.type = type;
    io.offset = offset;
    io.length = length;
    io.flags = opts.flags ?? 0;
    io.buf = opts.buf ?? (type === IoType.Read || type === IoType.Write ? bufferPool().get(Math.max(length, 1)) : null);
    bdev.submit(io);
  });
}

export function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export async function writeBytes(bdev: Bdev, offset: number, data: Buffer, fua = false): Promise<number> {
  const buf = bufferPool().get(data.length);
  data.copy(buf);
  const r = await run(bdev, IoType.Write, offset, data.length, { buf, flags: fua ? IoFlag.Fua : 0 });
  bufferPool().put(buf);
  return r.result;
}

export async function readBytes(bdev: Bdev, offset: number, length: number): Promise<Buffer> {
  const buf = bufferPool().get(length);
  const r = await run(bdev, IoType.Read, offset, length, { buf });
  if (r.result !== 0) throw new Error(`read failed: ${r.result}`);
  const out = Buffer.from(buf.subarray(0, length));
  bufferPool().put(buf);
  return out;
}
