// A bdev module is its descriptor: what the target, the JSON-RPC dispatcher, `aionbd rpc` and
// the embedded API know of a module comes from it and from nothing else.
import type { JSONSchemaType } from 'ajv';
import { describe, expect, it } from 'vitest';
import type { Bdev } from '../../src/bdev/bdev.js';
import { createErrorBdev, injectError } from '../../src/modules/error/error.js';
import { createMallocBdev } from '../../src/modules/malloc/malloc.js';
import { defineModule, method, ModuleState, type ModuleContext } from '../../src/bdev/module.js';
import { flush } from '../../src/bdev/registry.js';
import { FORMS } from '../../src/cli/rpc_forms.js';
import { methodHelp } from '../../src/cli/rpc_help.js';
import { silentLogger } from '../../src/log.js';
import { str } from '../../src/method_form.js';
import { bdevs, MODULES } from '../../src/modules/index.js';
import { RpcDispatcher } from '../../src/rpc/dispatcher.js';
import { Server } from '../../src/server.js';
import { Target } from '../../src/target.js';

const log = silentLogger();

describe('a module descriptor', () => {
  // Stand-ins for the malloc and error modules, with names of their own for what the target
  // takes from a descriptor, and a recorder of the hooks it runs.
  const seen = { examined: [] as string[], closed: 0 };
  const counts = new ModuleState(() => ({ made: 0 }));
  interface Create {
    name: string;
  }
  const create: JSONSchemaType<Create> = {
    type: 'object',
    properties: { name: { type: 'string' } },
    required: ['name'],
    additionalProperties: false,
  };
  const ram = defineModule({
    name: 'malloc',
    productName: 'Test RAM',
    startsEmpty: true,
    methods: [
      method(
        'bdev_test_ram_create',
        create,
        async (p, ctx: ModuleContext) => {
          counts.of(ctx).made++;
          return (await ctx.register(createMallocBdev({ name: p.name, blockSize: 512, numBlocks: 2048 }))).name;
        },
        { args: [str('name')] },
      ),
    ],
    configEntries: (ctx) => [{ method: 'bdev_test_ram_count', params: { made: counts.peek(ctx)?.made ?? 0 } }],
  });
  const faulty = defineModule({
    name: 'error',
    productName: 'Test Faults',
    errnoStatus: 'aio_error',
    methods: [],
    examine: (b) => {
      seen.examined.push(b.name);
      return Promise.resolve();
    },
    close: () => {
      seen.closed++;
      return Promise.resolve();
    },
  });

  it('gives the target its product name, iostat naming, examine and close hooks and save_config entries', async () => {
    const t = new Target({ log, modules: [ram, faulty] });
    const rpc = new RpcDispatcher();
    rpc.add(ram.methods, t);
    try {
      expect(await rpc.call('bdev_test_ram_create', { name: 'r0' }, { allowed: null })).toBe('r0');
      const base = t.bdevs.get('r0');
      const ee = await t.register(createErrorBdev(base), { claims: [base] });
      // The RAM bdev starts empty: no module examines it; the error bdev is examined.
      expect(seen.examined).toEqual(['EE_r0']);
      expect(t.getBdevs().map((b) => b['product_name'])).toEqual(['Test RAM', 'Test Faults']);
      injectError(ee, { ioType: 'flush', errorType: 'failure', num: 1 });
      expect(await flush(ee)).toBeLessThan(0);
      const stats = t.iostat({ names: ['EE_r0'] })['bdevs'] as Record<string, unknown>[];
      expect(stats[0]?.['io_error']).toEqual({ aio_error: 1 });
      const bdevConfig = t.saveConfig().subsystems[0]?.config ?? [];
      expect(bdevConfig[0]).toEqual({ method: 'bdev_test_ram_count', params: { made: 1 } });
    } finally {
      await t.close();
    }
    expect(seen.closed).toBe(1);
  });

  it('is all a module needs: its methods are served and given rpc.py forms, its constructor is in bdevs', async () => {
    const names = MODULES.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(['aio', 'malloc', 'error', 'delay', 'raid', 'split', 'lvol', 'rbd']));
    const s = new Server({ log });
    try {
      const served = s.rpc.names();
      for (const m of MODULES) {
        expect(m.methods.length, m.name).toBeGreaterThan(0);
        for (const spec of m.methods) {
          expect(served, spec.name).toContain(spec.name);
          if (spec.form !== undefined) expect(FORMS.get(spec.name)).toBe(spec.form);
          expect(methodHelp(spec.name)).toMatch(new RegExp(`^usage: aionbd rpc \\[-s SOCK\\] \\[-t SEC\\] ${spec.name}`));
        }
        if (m.create !== undefined) expect((bdevs as Record<string, unknown>)[m.name]).toBe(m.create);
      }
      // Each module's bdevs carry its name, so the target finds the descriptor of each.
      const made: Bdev = bdevs.malloc({ name: 'm', blockSize: 512, numBlocks: 8 });
      expect(s.moduleOf(made)?.productName).toBe('Malloc disk');
      await made.close();
    } finally {
      await s.close();
    }
  });
});
