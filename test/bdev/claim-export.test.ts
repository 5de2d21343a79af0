import { describe, expect, it } from 'vitest';
import { BdevInUseError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { Server } from '../../src/server.js';

describe('claims and exports', () => {
  it('an exported bdev cannot be claimed (a claim is exclusive write access), an unexported one can', async () => {
    const s = new Server({ log: silentLogger() });
    try {
      await s.createMalloc({ name: 'm0', blockSize: 512, numBlocks: 262144 });
      s.addExport('m0');
      await expect(s.createError('m0')).rejects.toThrow(BdevInUseError);
      await expect(s.createLvstore('m0', 'lvs0')).rejects.toThrow(/exported as "m0"/);
      s.removeExport('m0');
      await s.createError('m0');
      expect(s.getBdevs().map((b) => b['name'])).toContain('EE_m0');
    } finally {
      await s.close();
    }
  });
});
