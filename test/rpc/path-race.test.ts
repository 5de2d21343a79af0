// Issue 12, item 3: a directory inside the --allow-path root is swapped with a symlink to an
// outside directory (renameat2 RENAME_EXCHANGE in a loop) while bdev_aio_create names a file
// in it. The check and the open must be one act: not one open may reach the outside file
// (told apart by its size).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RpcError } from '../../src/errors.js';
import { rpcCall } from '../../src/rpc/client.js';
import { startSwapper } from '../helpers/swapper.js';
import { makeFile, startTarget } from './target.js';

const MiB = 2 ** 20;
const RACE_SECONDS = 5;

describe('--allow-path under a directory/symlink swap race', () => {
  it('bdev_aio_create never opens the file outside the root', async () => {
    const t = await startTarget({
      allowPath: ['allowed'],
      prepare: (dir) => {
        fs.mkdirSync(path.join(dir, 'allowed', 'd'), { recursive: true });
        fs.mkdirSync(path.join(dir, 'outside'));
        makeFile(path.join(dir, 'allowed', 'd', 'disk.img'), MiB);
        makeFile(path.join(dir, 'outside', 'disk.img'), 2 * MiB);
        fs.symlinkSync(path.join(dir, 'outside'), path.join(dir, 'allowed', 'link'));
      },
    });
    try {
      const swapper = await startSwapper(t.file('allowed/d'), t.file('allowed/link'), RACE_SECONDS);
      let inside = 0,
        outside = 0,
        refused = 0;
      const why = new Set<string>();
      const deadline = Date.now() + RACE_SECONDS * 1000;
      for (let i = 0; i < 20_000 && Date.now() < deadline; i++) {
        try {
          await rpcCall(t.rpcSock, 'bdev_aio_create', { filename: t.file('allowed/d/disk.img'), name: 'r', block_size: 512 }, 10_000);
        } catch (err) {
          if (!(err instanceof RpcError)) throw err;
          refused++;
          why.add(err.message.replace(/\/\S+/g, 'PATH'));
          continue;
        }
        const [b] = (await rpcCall(t.rpcSock, 'bdev_get_bdevs', { name: 'r' }, 10_000)) as { num_blocks: number; block_size: number }[];
        if (b !== undefined && b.num_blocks * b.block_size === MiB) inside++;
        else outside++;
        await rpcCall(t.rpcSock, 'bdev_aio_delete', { name: 'r' }, 10_000);
      }
      const swaps = await swapper.done();
      console.log(`race: ${swaps} swaps; ${inside} opens inside, ${outside} outside, ${refused} refused (${[...why].join(' | ')})`);
      expect(swaps).toBeGreaterThan(1000);
      // Both states of the directory were met, so the race really ran.
      expect(inside).toBeGreaterThan(5);
      expect(refused).toBeGreaterThan(5);
      expect(outside).toBe(0);
      for (const w of why) expect(w).toMatch(/outside the allowed paths|changed while it was (checked|opened)|no such file/);
    } finally {
      await t.cleanup();
    }
  }, 60_000);
});

describe('a regular file swapped with a FIFO while bdev_aio_create opens it read-only', () => {
  it('never blocks the server: every call and a second client are answered promptly', async () => {
    const t = await startTarget({
      allowPath: ['allowed'],
      prepare: (dir) => {
        fs.mkdirSync(path.join(dir, 'allowed'));
        makeFile(path.join(dir, 'allowed', 'x.img'), MiB);
        execFileSync('mkfifo', [path.join(dir, 'allowed', 'p')]);
      },
    });
    try {
      const seconds = 3;
      const swapper = await startSwapper(t.file('allowed/x.img'), t.file('allowed/p'), seconds);
      let pings = 0,
        slowest = 0,
        stop = false;
      const pinger = (async () => {
        while (!stop && pings < 10_000) {
          const t0 = Date.now();
          await rpcCall(t.rpcSock, 'rpc_get_methods', {}, 2000);
          slowest = Math.max(slowest, Date.now() - t0);
          pings++;
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      let opened = 0,
        refused = 0;
      const deadline = Date.now() + seconds * 1000;
      try {
        for (let i = 0; i < 20_000 && Date.now() < deadline; i++) {
          try {
            await rpcCall(t.rpcSock, 'bdev_aio_create', { filename: t.file('allowed/x.img'), name: 'x', readonly: true }, 5000);
            opened++;
            await rpcCall(t.rpcSock, 'bdev_aio_delete', { name: 'x' }, 5000);
          } catch (err) {
            if (!(err instanceof RpcError)) throw err;
            refused++;
          }
        }
      } finally {
        stop = true;
        await pinger;
      }
      await swapper.done();
      console.log(`fifo race: ${opened} opened, ${refused} refused, ${pings} pings, slowest ${slowest} ms`);
      expect(opened).toBeGreaterThan(5);
      expect(refused).toBeGreaterThan(5);
      expect(slowest).toBeLessThan(1000);
    } finally {
      await t.cleanup();
    }
  }, 60_000);
});
