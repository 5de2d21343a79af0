// The geometry a module may give a bdev it makes from its caller's numbers (malloc, null).
import { InvalidBdevError } from '../errors.js';

/** The bytes of `numBlocks` blocks of `blockSize`; InvalidBdevError unless they make a bdev. */
export function checkGeometry(blockSize: number, numBlocks: number): number {
  if (!Number.isInteger(blockSize) || blockSize < 512 || blockSize % 512 !== 0) {
    throw new InvalidBdevError(`block size ${blockSize} must be a multiple of 512`);
  }
  if (!Number.isSafeInteger(numBlocks) || numBlocks <= 0) throw new InvalidBdevError(`number of blocks ${numBlocks} must be positive`);
  const size = blockSize * numBlocks;
  if (!Number.isSafeInteger(size)) throw new InvalidBdevError(`${numBlocks} blocks of ${blockSize} bytes is too large`);
  return size;
}
