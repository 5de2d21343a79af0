// --allow-path: files named over JSON-RPC are judged by their real path (symlinks and ".."
// resolved), opened beneath their allowed root and judged by the opened fd: a regular file
// with one link, or a block device. Names are validated. Files named on the command line or in
// --config are the operator's own.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rpcCall } from '../../src/rpc/client.js';
import { explain, run } from '../helpers/run.js';
import { BIN } from '../helpers/server.js';
import { makeFile, startTarget, type RpcTarget } from './target.js';

const MiB = 2 ** 20;

describe('paths and names over JSON-RPC', () => {
  let t: RpcTarget;
  beforeAll(async () => {
    t = await startTarget({
      allowPath: ['allowed'],
      prepare: (dir) => {
        fs.mkdirSync(path.join(dir, 'allowed'));
        fs.mkdirSync(path.join(dir, 'allowed', 'sub'));
        fs.mkdirSync(path.join(dir, 'outside'));
        makeFile(path.join(dir, 'allowed', 'in.img'), MiB);
        makeFile(path.join(dir, 'outside', 'secret.img'), MiB);
        // Looks like a sibling of the root: a prefix test without the "/" would let it through.
        fs.mkdirSync(path.join(dir, 'allowed-not'));
        makeFile(path.join(dir, 'allowed-not', 'x.img'), MiB);
        fs.symlinkSync(path.join(dir, 'outside', 'secret.img'), path.join(dir, 'allowed', 'escape.img'));
        fs.symlinkSync(path.join(dir, 'allowed', 'in.img'), path.join(dir, 'allowed', 'sub', 'link.img'));
        fs.symlinkSync('/dev/null', path.join(dir, 'allowed', 'null.img'));
        execFileSync('mkfifo', [path.join(dir, 'allowed', 'fifo')]);
        // A second name, inside the root, of a file outside it.
        fs.linkSync(path.join(dir, 'outside', 'secret.img'), path.join(dir, 'allowed', 'hard.img'));
      },
    });
  });
  afterAll(async () => {
    await t.cleanup();
  });

  async function refused(file: string, msg: RegExp): Promise<void> {
    const r = await t.rpc('bdev_aio_create', file, 'x', '512');
    expect(r.code, explain(r)).toBe(1);
    expect(r.stderr).toMatch(msg);
  }

  it('accepts a file under the root, through a symlink that stays inside, stored by its real path', async () => {
    expect(await t.ok('bdev_aio_create', t.file('allowed/sub/link.img'), 'ok1', '512')).toBe('ok1');
    expect(await t.json('bdev_get_bdevs', '-b', 'ok1')).toMatchObject([
      { driver_specific: { aio: { filename: fs.realpathSync(t.file('allowed/in.img')) } } },
    ]);
    await t.ok('bdev_aio_delete', 'ok1');
  });

  it('refuses files outside the roots: plainly, by "..", by a symlink, by a look-alike prefix', async () => {
    await refused(t.file('outside/secret.img'), /^aionbd: Permission denied: .*secret\.img is outside the allowed paths/);
    await refused(`${t.file('allowed')}/../outside/secret.img`, /Permission denied: .* is outside the allowed paths/);
    await refused(`${t.file('allowed')}/sub/../../outside/secret.img`, /outside the allowed paths/);
    await refused(t.file('allowed/escape.img'), /escape\.img is outside the allowed paths/);
    await refused(t.file('allowed-not/x.img'), /outside the allowed paths/);
    await refused('/etc/passwd', /outside the allowed paths/);
    expect(await t.json('bdev_get_bdevs')).toEqual([]);
  });

  it('refuses what is not a regular file or block device, and a missing file', async () => {
    await refused(t.file('allowed/sub'), /Permission denied: .*sub is not a regular file or a block device/);
    await refused(t.file('allowed/null.img'), /not a regular file or a block device|outside the allowed paths/);
    await refused(t.file('allowed/missing.img'), /^aionbd: No such file or directory: .*missing\.img: no such file or directory/);
  });

  it('refuses a FIFO at once, answering another client meanwhile', async () => {
    const t0 = Date.now();
    const create = rpcCall(t.rpcSock, 'bdev_aio_create', { filename: t.file('allowed/fifo'), name: 'f' }, 5000).then(
      () => null,
      (e: Error) => e,
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(await rpcCall(t.rpcSock, 'bdev_get_bdevs', {}, 5000)).toEqual([]);
    expect((await create)?.message).toMatch(/fifo is not a regular file or a block device \(it is a fifo\)/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('refuses a file with a second hard link under the root (the other name may be outside)', async () => {
    await refused(
      t.file('allowed/hard.img'),
      /^aionbd: Permission denied: .*hard\.img has 2 hard links; a file under an --allow-path root must have only one/,
    );
    expect(await t.json('bdev_get_bdevs')).toEqual([]);
  });

  it('checks paths inside load_config too', async () => {
    const cfg = {
      subsystems: [
        {
          subsystem: 'bdev',
          config: [{ method: 'bdev_aio_create', params: { name: 'sneaky', filename: t.file('outside/secret.img'), block_size: 512 } }],
        },
      ],
    };
    fs.writeFileSync(t.file('allowed/cfg.json'), JSON.stringify(cfg));
    const r = await t.rpc('load_config', '-j', t.file('allowed/cfg.json'));
    expect(r.code, explain(r)).toBe(1);
    expect(r.stderr).toMatch(/config entry bdev_aio_create .* failed: .*outside the allowed paths/);
    expect(await t.json('bdev_get_bdevs')).toEqual([]);
  });

  it('validates bdev and export names', async () => {
    for (const bad of ['a b', '../x', '-x', 'x'.repeat(129), 'a/b', '']) {
      const r = await t.rpc('bdev_malloc_create', `{"block_size":512,"num_blocks":8,"name":${JSON.stringify(bad)}}`);
      expect(r.code, `${bad}: ${explain(r)}`).toBe(1);
      expect(r.stderr).toMatch(/Invalid argument: bad bdev name/);
    }
    await t.ok('bdev_malloc_create', '1', '512', '-b', 'good.name:1+2-3');
    const r = await t.rpc('nbd_export_add', 'good.name:1+2-3', '-n', 'x/../y');
    expect(r.stderr).toMatch(/bad export name/);
    await t.ok('bdev_malloc_delete', 'good.name:1+2-3');
  });
});

describe('paths from the operator', () => {
  it('--config may name files anywhere: they are not RPC input', async () => {
    const t = await startTarget({
      allowPath: ['nowhere'],
      prepare: (dir) => {
        makeFile(path.join(dir, 'disk.img'), MiB);
        fs.writeFileSync(
          path.join(dir, 'cfg.json'),
          JSON.stringify({
            subsystems: [
              {
                subsystem: 'bdev',
                config: [{ method: 'bdev_aio_create', params: { name: 'd', filename: path.join(dir, 'disk.img'), block_size: 512 } }],
              },
              { subsystem: 'nbd', config: [{ method: 'nbd_export_add', params: { bdev_name: 'd' } }] },
            ],
          }),
        );
      },
      args: ['--config', 'cfg.json'],
    });
    try {
      expect(await t.json('bdev_get_bdevs')).toMatchObject([{ name: 'd' }]);
      const r = await t.rpc('bdev_aio_create', t.file('disk.img'), 'd2', '512');
      expect(r.stderr).toMatch(/outside the allowed paths/);
      expect(fs.statSync(t.rpcSock).mode & 0o777).toBe(0o600);
    } finally {
      await t.cleanup();
    }
  });

  it('an explicit --rpc socket already in use is an error', async () => {
    const t = await startTarget();
    try {
      const r = await run(
        process.execPath,
        [BIN, 'serve', '--listen', `unix:${t.file('n2.sock')}`, '--rpc', t.rpcSock, '--config', t.file('empty.json')],
        { timeoutMs: 20_000, cwd: t.dir },
      );
      expect(r.code, explain(r)).toBe(1);
      expect(r.stderr).toMatch(/^aionbd: cannot listen on unix:.*rpc\.sock \(JSON-RPC\): address already in use$/m);
    } finally {
      await t.cleanup();
    }
  });
});
