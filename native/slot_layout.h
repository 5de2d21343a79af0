// The AIO engine's slot table: one block of memory shared by JS (typed-array views) and C++.
// Struct of arrays, each `slots` long; one engine serves every AIO bdev of a Node environment,
// so a slot names its file too. This is the only definition of the layout; the addon exports
// the offsets and src/native.ts checks its own computation against them.
#pragma once
#include <cstdint>

namespace aionbd {

struct SlotLayout {
  uint32_t op;       // u32[slots]  IOCB_CMD_* of each slot
  uint32_t rwFlags;  // u32[slots]  RWF_* (RWF_DSYNC for FUA)
  uint32_t len;      // u32[slots]  bytes to transfer
  uint32_t fd;       // u32[slots]  file descriptor of the bdev that owns the slot
  uint32_t sq;       // u32[slots]  slots to submit, filled by JS before submit(n)
  uint32_t cqSlot;   // u32[slots]  slots completed, filled by C++ before onComplete(n)
  uint32_t offset;   // f64[slots]  byte offset in the file (exact below 2^53)
  uint32_t cqRes;    // f64[slots]  signed result of each completion (bytes or -errno)
  uint32_t size;     // total bytes
};

inline SlotLayout ComputeSlotLayout(uint32_t slots) {
  SlotLayout l{};
  l.op = 0;
  l.rwFlags = 4 * slots;
  l.len = 8 * slots;
  l.fd = 12 * slots;
  l.sq = 16 * slots;
  l.cqSlot = 20 * slots;
  l.offset = 24 * slots;  // six u32 columns: a multiple of 8, as f64 views need
  l.cqRes = l.offset + 8 * slots;
  l.size = l.cqRes + 8 * slots;
  return l;
}

}  // namespace aionbd
