// The kernel rig's process runner (src/testing/rig/run.ts).
import { describe, expect, it } from 'vitest';
import { run, runOk } from '../../src/testing/rig/run.js';

describe('rig: run()', () => {
  it('takes a tool that stops reading its input early, without an EPIPE escaping', async () => {
    // 32 MiB is far more than a pipe holds, so the write is still going when head exits.
    const r = await run('head', ['-c', '4'], { input: Buffer.alloc(32 << 20, 0x61) });
    expect(r).toEqual({ code: 0, stdout: Buffer.from('aaaa'), stderr: '' });
  });

  it('resolves with the exit code of a failing tool, and runOk throws with its stderr', async () => {
    expect((await run('sh', ['-c', 'echo oops >&2; exit 3'])).code).toBe(3);
    await expect(runOk('sh', ['-c', 'echo oops >&2; exit 3'])).rejects.toThrow('failed (exit 3): oops');
  });
});
