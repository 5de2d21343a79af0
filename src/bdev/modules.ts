// Every bdev module's constructor, in one typed table (no loading by name at run time).
import { createAioBdev } from './aio.js';
import { createDelayBdev } from './delay.js';
import { createErrorBdev } from './error.js';
import { createMallocBdev } from './malloc.js';
import { createRaid0Bdev } from './raid0.js';
import { createRbdBdev } from './rbd/bdev.js';
import { createSplitBdevs } from './split.js';

/**
 * Low-level constructors: each returns an unregistered bdev (split: several). Register them
 * in a BdevRegistry with their claims, or use Server's methods, which do both.
 */
export const bdevs = {
  aio: createAioBdev,
  malloc: createMallocBdev,
  error: createErrorBdev,
  delay: createDelayBdev,
  raid0: createRaid0Bdev,
  split: createSplitBdevs,
  rbd: createRbdBdev,
} as const;
