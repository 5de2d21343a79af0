// The AIO engine's slot table: one block of memory shared by JS (typed-array views) and C++.
// Struct of arrays, each `depth` long. This is the only definition of the layout; the addon
// exports the offsets and src/native.ts checks its own computation against them.
#pragma once
#include <cstdint>

namespace aionbd {

struct SlotLayout {
  uint32_t op;       // u32[depth]  IOCB_CMD_* of each slot
  uint32_t rwFlags;  // u32[depth]  RWF_* (RWF_DSYNC for FUA)
  uint32_t len;      // u32[depth]  bytes to transfer
  uint32_t sq;       // u32[depth]  slots to submit, filled by JS before submit(n)
  uint32_t cqSlot;   // u32[depth]  slots completed, filled by C++ before onComplete(n)
  uint32_t offset;   // f64[depth]  byte offset in the file (exact below 2^53)
  uint32_t cqRes;    // f64[depth]  signed result of each completion (bytes or -errno)
  uint32_t size;     // total bytes
};

inline SlotLayout ComputeSlotLayout(uint32_t depth) {
  SlotLayout l{};
  l.op = 0;
  l.rwFlags = 4 * depth;
  l.len = 8 * depth;
  l.sq = 12 * depth;
  l.cqSlot = 16 * depth;
  l.offset = (20 * depth + 7) & ~7u;  // f64 views need 8-byte alignment
  l.cqRes = l.offset + 8 * depth;
  l.size = l.cqRes + 8 * depth;
  return l;
}

}  // namespace aionbd
