// The bdev of one --aio (--uring) spec, shared by `serve` and `attach --aio`: its file made as prealloc=
// says when size= has to create it, and whatever that made noted for a failed start to remove.
import fs from 'node:fs';
import type { Logger } from '../log.js';
import type { Server } from '../server.js';
import type { AioSpec } from './aio-spec.js';
import type { CreatedFiles } from './created-files.js';
import { createPreallocated, progressFor } from './prealloc.js';

export async function createSpecBdev(server: Server, s: AioSpec, created: CreatedFiles, log: Logger): Promise<void> {
  created.before(s.filename);
  try {
    const mode = s.prealloc ?? 'sparse';
    if (mode !== 'sparse' && s.size !== undefined && !s.readonly && !fs.existsSync(s.filename)) {
      await createPreallocated(s.filename, s.size, mode, log.child({ bdev: s.name }), progressFor(s.filename, log.isLevelEnabled('info')));
    } else if (mode !== 'sparse' && fs.existsSync(s.filename)) {
      log.warn({ bdev: s.name, filename: s.filename, prealloc: mode }, 'the file exists: served as it is, not preallocated');
    }
    const p = { filename: s.filename, name: s.name, blockSize: s.blockSize, size: s.size, readonly: s.readonly };
    await (s.module === 'uring' ? server.createUring(p) : server.createAio(p));
  } finally {
    // Also after a failure: a preallocated file that the bdev then refused is ours to remove.
    created.after();
  }
}
