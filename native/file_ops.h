// The operations fileOp(op, fd, offset, length, cb) runs on the libuv thread pool
// (file_ops.cc); the addon exports their codes as constants.fileOp.
#pragma once
#include <cstdint>

namespace aionbd {

enum FileOp : uint32_t {
  kPunchHole = 0,      // TRIM, or WRITE_ZEROES that may leave holes
  kZeroRange = 1,      // WRITE_ZEROES that must stay allocated (NO_HOLE)
  kDiscard = 2,        // BLKDISCARD on a block device
  kZeroOut = 3,        // BLKZEROOUT on a block device
  kFdatasync = 4,
  kSeekData = 5,
  kSeekHole = 6,
  kWriteZeroes = 7,    // plain writes of zeroes, the fallback that works everywhere
  kZeroRangeFast = 8,  // ZERO_RANGE or nothing: for NBD_CMD_FLAG_FAST_ZERO
  kPunchOrZero = 9,    // zeroes that may leave a hole: punch, else zero the range any way we can
  kAllocate = 10,      // reserve blocks (fallocate mode 0): prealloc=falloc of a new image
};

}  // namespace aionbd
