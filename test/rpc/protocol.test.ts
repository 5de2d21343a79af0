// JSON-RPC 2.0 on the unix socket, byte for byte: streaming parse without framing, error
// codes, notifications, batches, the socket's mode; plus the pure pieces (stream parser,
// rpc.py argument forms).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { paramsFromArgs } from '../../src/cli/rpc_args.js';
import { silentLogger } from '../../src/log.js';
import { JsonStream, JsonStreamError } from '../../src/rpc/json_stream.js';
import { Server } from '../../src/server.js';
import { rmrf, tmpDir } from '../helpers/tmp.js';

/** Sends `bytes` (in the given pieces), then collects newline-terminated responses until `n` arrived or the server closed. */
function exchange(
  sock: string,
  pieces: (string | Buffer)[],
  n: number,
  timeoutMs = 5000,
): Promise<{ responses: unknown[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock);
    let text = '';
    let closed = false;
    const responses: unknown[] = [];
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`timeout; got ${text}`));
    }, timeoutMs);
    const finish = (): void => {
      clearTimeout(timer);
      c.destroy();
      resolve({ responses, closed });
    };
    c.on('connect', () => {
      for (const p of pieces) c.write(p);
    });
    c.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
        responses.push(JSON.parse(text.slice(0, nl)));
        text = text.slice(nl + 1);
      }
      if (responses.length >= n) finish();
    });
    c.on('end', () => {
      closed = true;
      finish();
    });
    c.on('error', reject);
  });
}

describe('JSON-RPC over the unix socket', () => {
  let s: Server;
  let dir: string;
  let sock: string;
  beforeEach(async () => {
    dir = tmpDir();
    sock = path.join(dir, 'rpc.sock');
    s = new Server({ log: silentLogger() });
    await s.listenRpc(sock, [dir]);
  });
  afterEach(async () => {
    await s.close();
    rmrf(dir);
  });

  it('creates the socket mode 0600', () => {
    expect(fs.statSync(sock).mode & 0o777).toBe(0o600);
  });

  it('cuts error messages that quote a huge name, so a request of 2 MiB is not answered with 2 MiB', async () => {
    const name = 'n'.repeat(2 * 2 ** 20);
    const r = await exchange(
      sock,
      [JSON.stringify({ id: 1, method: 'bdev_get_bdevs', params: { name } }), JSON.stringify({ id: 2, method: name })],
      2,
    );
    const [byName, byMethod] = r.responses as { error: { message: string } }[];
    expect(byName?.error.message).toMatch(/^No such device: bdev "nnnn+\.\.\.$/);
    expect(byName?.error.message.length).toBe(1024 + 3);
    expect(byMethod?.error.message).toBe('Method not found');
  });

  it('parses concatenated requests with no separator, split at every byte', async () => {
    const wire =
      '{"jsonrpc":"2.0","id":1,"method":"bdev_malloc_create","params":{"name":"m{0}","block_size":512,"num_blocks":8}}' +
      '{"id":"two","method":"bdev_get_bdevs","params":{"name":"m{0}"}}';
    // Names with braces would confuse a naive scanner; here they are refused by name validation instead.
    const r = await exchange(
      sock,
      [...wire].map((ch) => Buffer.from(ch)),
      2,
    );
    expect(r.responses[0]).toMatchObject({ jsonrpc: '2.0', id: 1, error: { code: -22, data: { code: 'AIONBD_USAGE' } } });
    expect(r.responses[1]).toMatchObject({
      id: 'two',
      error: { code: -19, message: 'No such device: bdev "m{0}" does not exist', data: { code: 'AIONBD_BDEV_NOT_FOUND', errno: 'ENODEV' } },
    });
    const ok = await exchange(
      sock,
      [
        '{"id":3,"method":"bdev_malloc_create","params":{"name":"m0","block_size":512,"num_blocks":8}}\n{"id":4,"method":"bdev_get_bdevs","params":{"name":"m0"}}',
      ],
      2,
    );
    expect(ok.responses).toEqual([
      { jsonrpc: '2.0', id: 3, result: 'm0' },
      expect.objectContaining({ id: 4, result: [expect.objectContaining({ name: 'm0' })] }),
    ]);
  });

  it('answers the standard error codes', async () => {
    const r = await exchange(
      sock,
      [
        '{"id":1,"method":"no_such"}',
        '{"id":2,"method":"bdev_get_bdevs","params":{"nmae":"x"}}',
        '{"id":3,"method":"bdev_get_bdevs","params":[1,2]}',
        '{"id":4,"params":{}}',
        '{"id":5,"jsonrpc":"1.0","method":"rpc_get_methods"}',
        '{"id":{"no":1},"method":"rpc_get_methods"}',
        '{"id":6,"method":"aionbd_get_version","params":{"x":1}}',
      ],
      7,
    );
    expect(r.responses).toEqual([
      { jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'Method not found' } },
      {
        jsonrpc: '2.0',
        id: 2,
        error: {
          code: -32602,
          message: 'Invalid parameters: params must NOT have additional properties',
          data: { code: 'AIONBD_RPC_INVALID_PARAMS' },
        },
      },
      { jsonrpc: '2.0', id: 3, error: { code: -32602, message: 'Invalid parameters: params must be an object' } },
      { jsonrpc: '2.0', id: 4, error: { code: -32600, message: 'Invalid request: method must be a string' } },
      { jsonrpc: '2.0', id: 5, error: { code: -32600, message: 'Invalid request: jsonrpc must be "2.0"' } },
      { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Invalid request: id must be a string, a number or null' } },
      {
        jsonrpc: '2.0',
        id: 6,
        error: {
          code: -32602,
          message: 'Invalid parameters: aionbd_get_version takes no parameters',
          data: { code: 'AIONBD_RPC_INVALID_PARAMS' },
        },
      },
    ]);
  });

  it('answers a parse error with -32700 and closes the connection', async () => {
    const r = await exchange(sock, ['{"id":1,"method":"rpc_get_methods"} {"id":2,"method":} {"id":3,"method":"rpc_get_methods"}'], 3);
    expect(r.responses).toHaveLength(2);
    expect(r.responses[0]).toMatchObject({ id: 1, result: expect.any(Array) });
    expect(r.responses[1]).toMatchObject({ id: null, error: { code: -32700 } });
    expect(r.closed).toBe(true);
    const junk = await exchange(sock, ['hello'], 1);
    expect(junk.responses).toEqual([
      {
        jsonrpc: '2.0',
        id: null,
        error: { code: -32700, message: 'Parse error: unexpected "h" where a JSON object or array should start' },
      },
    ]);
  });

  it('suppresses results of notifications but not their errors; runs batches in order', async () => {
    const r = await exchange(
      sock,
      [
        '{"method":"bdev_malloc_create","params":{"name":"n0","block_size":512,"num_blocks":8}}',
        '{"method":"bdev_malloc_delete","params":{"name":"nope"}}',
        '[{"id":1,"method":"bdev_malloc_create","params":{"name":"b0","block_size":512,"num_blocks":8}},' +
          '{"method":"nbd_export_add","params":{"bdev_name":"b0"}},{"id":2,"method":"nbd_get_exports"}]',
        '[]',
      ],
      3,
    );
    expect(r.responses[0]).toMatchObject({ id: null, error: { code: -19 } });
    expect(r.responses[1]).toEqual([
      { jsonrpc: '2.0', id: 1, result: 'b0' },
      { jsonrpc: '2.0', id: 2, result: [{ name: 'b0', bdev_name: 'b0', readonly: false, description: '', size: 4096 }] },
    ]);
    expect(r.responses[2]).toMatchObject({ id: null, error: { code: -32600 } });
    expect(s.bdevs.has('n0')).toBe(true);
  });

  it('refuses a second server on a socket in use, and replaces a stale one', async () => {
    const other = new Server({ log: silentLogger() });
    await expect(other.listenRpc(sock, [dir])).rejects.toThrow(/address already in use/);
    await other.close();
    await s.close();
    // Left behind by a server that died: a socket file nobody listens on (bound, never listening).
    const r = spawnSync('/usr/bin/python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(sock)})`]);
    expect(r.status).toBe(0);
    expect(fs.statSync(sock).isSocket()).toBe(true);
    s = new Server({ log: silentLogger() });
    await s.listenRpc(sock, [dir]);
    expect((await exchange(sock, ['{"id":1,"method":"bdev_wait_for_examine"}'], 1)).responses).toEqual([
      { jsonrpc: '2.0', id: 1, result: true },
    ]);
  });
});

describe('JsonStream', () => {
  it('keeps strings with braces and escapes intact, across any split', () => {
    const values = [{ a: '}{"\\' }, [1, { b: ']' }], { c: 'é€😀' }];
    const wire = Buffer.from(values.map((v) => JSON.stringify(v)).join(' \n'));
    for (let cut = 1; cut < wire.length; cut++) {
      const st = new JsonStream(1 << 20);
      expect([...st.push(wire.subarray(0, cut)), ...st.push(wire.subarray(cut))]).toEqual(values);
    }
  });

  it('takes a value sent in many chunks whole, at a cost that grows with its length, not with its length squared', () => {
    // A 15 MiB request in 64 KiB reads: scanning all buffered text again on every read took
    // 3.5 s of the server's only thread here; scanning each byte once takes a tenth of that.
    const body = Buffer.from(`{"id":1,"method":"x","params":{"a":"${'x'.repeat(15 * 2 ** 20)}"}}`);
    const st = new JsonStream(16 * 2 ** 20);
    const got: unknown[] = [];
    const t0 = Date.now();
    for (let i = 0; i < body.length; i += 65536) got.push(...st.push(body.subarray(i, i + 65536)));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(got).toHaveLength(1);
    expect((got[0] as { params: { a: string } }).params.a.length).toBe(15 * 2 ** 20);
  });

  it('refuses a value over the limit and anything that is not an object or array', () => {
    expect(() => new JsonStream(16).push(Buffer.from(`{"a":"${'x'.repeat(32)}`))).toThrow(JsonStreamError);
    expect(() => new JsonStream(16).push(Buffer.from('42'))).toThrow(/should start/);
    expect(() => new JsonStream(16).push(Buffer.from('{"a":}'))).toThrow(JsonStreamError);
  });
});

describe('rpc.py argument forms', () => {
  it('turns positional arguments and flags into params', () => {
    expect(paramsFromArgs('bdev_aio_create', ['/path/disk.img', 'aio0', '4096'])).toEqual({
      filename: '/path/disk.img',
      name: 'aio0',
      block_size: 4096,
    });
    expect(paramsFromArgs('bdev_get_bdevs', ['-b', 'aio0'])).toEqual({ name: 'aio0' });
    expect(paramsFromArgs('bdev_raid_create', ['-n', 'r0', '-z', '64', '-r', '0', '-b', 'a b'])).toEqual({
      name: 'r0',
      strip_size_kb: 64,
      raid_level: '0',
      base_bdevs: ['a', 'b'],
    });
    expect(paramsFromArgs('bdev_error_inject_error', ['EE_a', 'read', 'failure', '-n', '1'])).toEqual({
      name: 'EE_a',
      io_type: 'read',
      error_type: 'failure',
      num: 1,
    });
    expect(paramsFromArgs('bdev_malloc_create', ['32', '512', '-b', 'Malloc0'])).toEqual({
      name: 'Malloc0',
      block_size: 512,
      num_blocks: 65536,
    });
    expect(paramsFromArgs('bdev_get_iostat', ['--names=a,b', '-c'])).toEqual({ names: ['a', 'b'], per_channel: true });
    expect(paramsFromArgs('anything_else', ['{"x": [1]}'])).toEqual({ x: [1] });
    expect(paramsFromArgs('anything_else', [])).toBeUndefined();
  });

  it('names what is wrong', () => {
    expect(() => paramsFromArgs('bdev_aio_create', ['/f'])).toThrow(/missing NAME/);
    expect(() => paramsFromArgs('bdev_aio_create', ['/f', 'n', 'big'])).toThrow(/BLOCK_SIZE must be a whole number/);
    expect(() => paramsFromArgs('bdev_get_bdevs', ['-x'])).toThrow(/unknown option -x/);
    expect(() => paramsFromArgs('bdev_get_bdevs', ['-b'])).toThrow(/-b needs a value/);
    expect(() => paramsFromArgs('unknown_method', ['a'])).toThrow(/one JSON object/);
  });
});

describe('config files', () => {
  it('loads a config shaped as SPDK saves it, skipping subsystems aionbd does not have', async () => {
    const dir = tmpDir();
    const s = new Server({ log: silentLogger() });
    try {
      const img = path.join(dir, 'vm.img');
      fs.writeFileSync(img, Buffer.alloc(1 << 20));
      await s.loadConfig({
        subsystems: [
          { subsystem: 'iobuf', config: [{ method: 'iobuf_set_options', params: { small_pool_count: 8192 } }] },
          {
            subsystem: 'bdev',
            config: [
              {
                method: 'bdev_set_options',
                params: {
                  bdev_io_pool_size: 65535,
                  bdev_io_cache_size: 256,
                  bdev_auto_examine: true,
                  iobuf_small_cache_size: 128,
                  iobuf_large_cache_size: 16,
                },
              },
              {
                method: 'bdev_aio_create',
                params: {
                  name: 'aio0',
                  filename: img,
                  block_size: 4096,
                  readonly: false,
                  fallocate: false,
                  nowait: false,
                  uuid: '2b9c6f1e-5d1a-4c7e-9f0b-3a8e6d4c2f10',
                },
              },
              { method: 'bdev_set_qos_limit', params: { name: 'aio0', rw_ios_per_sec: 20000 } },
              { method: 'bdev_wait_for_examine' },
            ],
          },
          { subsystem: 'nbd', config: [] },
        ],
      });
      expect(s.getBdevs()).toMatchObject([
        {
          name: 'aio0',
          uuid: '2b9c6f1e-5d1a-4c7e-9f0b-3a8e6d4c2f10',
          block_size: 4096,
          num_blocks: 256,
          assigned_rate_limits: { rw_ios_per_sec: 20000 },
        },
      ]);
      await expect(s.loadConfig({ subsystems: {} })).rejects.toThrow(/"subsystems" must be an array/);
      await expect(
        s.loadConfig({
          subsystems: [{ subsystem: 'bdev', config: [{ method: 'bdev_set_qd_sampling_period', params: { name: 'aio0', period: 10 } }] }],
        }),
      ).rejects.toThrow(/config entry bdev_set_qd_sampling_period .* failed: Method not found/);
    } finally {
      await s.close();
      rmrf(dir);
    }
  });
});
