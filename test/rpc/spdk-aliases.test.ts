// Methods SPDK users type from habit, through the real `aionbd rpc` against `aionbd serve`:
// spdk_get_version, log_set_level/log_get_level (the live log level) and framework_get_subsystems.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain } from '../helpers/run.js';
import { handshakeGo, RawClient, request } from '../helpers/wire.js';
import { startTarget, type RpcTarget } from './target.js';

const NBD_CMD_DISC = 2;

/** Polls (every 50 ms, at most `ms`) until `cond` holds; returns whether it did. */
async function within(ms: number, cond: () => boolean): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

describe('SPDK method names', () => {
  let t: RpcTarget;
  beforeAll(async () => {
    t = await startTarget({ args: ['--aio', 'd.img,size=1M'] });
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('rpc_get_methods lists them', async () => {
    const methods = (await t.json('rpc_get_methods')) as string[];
    expect(methods).toEqual(
      expect.arrayContaining(['spdk_get_version', 'aionbd_get_version', 'log_set_level', 'log_get_level', 'framework_get_subsystems']),
    );
  });

  it("spdk_get_version answers as aionbd_get_version, in SPDK's shape", async () => {
    const v = await t.json('spdk_get_version');
    expect(v).toEqual(await t.json('aionbd_get_version'));
    expect(v).toMatchObject({
      version: expect.stringMatching(/^aionbd v\d+\.\d+\.\d+/) as string,
      fields: {
        major: expect.any(Number) as number,
        minor: expect.any(Number) as number,
        patch: expect.any(Number) as number,
        suffix: expect.any(String) as string,
      },
    });
  });

  it("framework_get_subsystems: save_config's subsystems, in order, with what each depends on", async () => {
    const subs = (await t.json('framework_get_subsystems')) as { subsystem: string; depends_on: string[] }[];
    expect(subs).toEqual([
      { subsystem: 'bdev', depends_on: [] },
      { subsystem: 'nbd', depends_on: ['bdev'] },
    ]);
    const saved = (await t.json('save_config')) as { subsystems: { subsystem: string }[] };
    expect(subs.map((s) => s.subsystem)).toEqual(saved.subsystems.map((s) => s.subsystem));
  });

  it("log_get_level / log_set_level take SPDK's level names, any case, and read back the name set", async () => {
    expect(await t.ok('log_get_level')).toBe('NOTICE'); // pino's info, SPDK's default
    for (const [set, read] of [
      ['DEBUG', 'DEBUG'],
      ['warning', 'WARNING'],
      ['INFO', 'INFO'],
      ['error', 'ERROR'],
      ['Notice', 'NOTICE'],
      ['trace', 'TRACE'],
    ]) {
      expect(await t.ok('log_set_level', set ?? '')).toBe('true');
      expect(await t.ok('log_get_level')).toBe(read);
    }
    expect(await t.ok('log_set_level', '{"level": "NOTICE"}')).toBe('true'); // SPDK's JSON params, as rpc.py sends them
    const bad = await t.rpc('log_set_level', 'LOUD');
    expect(bad.code, explain(bad)).toBe(1);
    expect(bad.stderr).toBe(
      'aionbd: Invalid parameters: level "LOUD" is not ERROR, WARNING, NOTICE, INFO or DEBUG (nor pino\'s fatal, trace or silent)\n',
    );
    const none = await t.rpc('log_set_level');
    expect(none.code, explain(none)).toBe(2); // rpc.py's form: the level is required
  });

  it('a new level reaches loggers already running: a connection made before it logs at it', async () => {
    expect(await t.ok('log_set_level', 'NOTICE')).toBe('true');
    const c = await RawClient.connect(t.nbdSock);
    try {
      await handshakeGo(c, 'd');
      // Made at info, so its debug records ("client sent NBD_CMD_DISC") would not show...
      expect(await t.ok('log_set_level', 'DEBUG')).toBe('true');
      c.write(request(NBD_CMD_DISC));
      // ...but now they do.
      expect(await within(5_000, () => t.stderr.includes('"msg":"client sent NBD_CMD_DISC"')), t.stderr.slice(-2000)).toBe(true);
      expect(t.stderr).toContain('"from":"info","to":"debug","msg":"log level set over JSON-RPC"');
    } finally {
      c.sock.destroy();
      await t.ok('log_set_level', 'NOTICE');
    }
  });
});
