// The slot table of the AIO engine and of an RBD image: one block of memory shared by JS
// (typed-array views) and C++. Struct of arrays, each `slots` long; one engine serves every
// AIO bdev of a Node environment, so a slot names its file too. AIONBD_SLOT_COLUMNS is the only
// definition of the layout: the offsets, the typed column pointers and what the addon exports
// (each table's `layout`, slotLayout(n), constants.slot) are all generated from it, and
// src/native.ts builds its views from what the addon exports.
#pragma once
#include <cstdint>
#include <cstring>

namespace aionbd {

// X(name, element type), in table order. The element type is what JS views the column as
// (uint32_t: Uint32Array, double: Float64Array).
#define AIONBD_SLOT_COLUMNS(X) \
  X(op, uint32_t)      /* IOCB_CMD_* of each slot (RbdOp in an RBD image's table) */ \
  X(rwFlags, uint32_t) /* RWF_* (RWF_DSYNC for FUA; kRbdFua, kRbdNoHole in an RBD image's table) */ \
  X(len, uint32_t)     /* bytes to transfer */ \
  X(fd, uint32_t)      /* file descriptor of the bdev that owns the slot (unused by RBD) */ \
  X(sq, uint32_t)      /* slots to submit, filled by JS before submit(n) */ \
  X(cqSlot, uint32_t)  /* slots completed, filled by C++ before onComplete(n) */ \
  X(offset, double)    /* byte offset in the file (exact below 2^53) */ \
  X(cqRes, double)     /* signed result of each completion (bytes or -errno) */

// Byte offset of each column in the table, and the table's total size.
struct SlotLayout {
#define AIONBD_SLOT_OFFSET(name, type) uint32_t name;
  AIONBD_SLOT_COLUMNS(AIONBD_SLOT_OFFSET)
#undef AIONBD_SLOT_OFFSET
  uint32_t size;
};

// Typed pointers to the columns of one table.
struct SlotColumns {
#define AIONBD_SLOT_POINTER(name, type) type* name = nullptr;
  AIONBD_SLOT_COLUMNS(AIONBD_SLOT_POINTER)
#undef AIONBD_SLOT_POINTER
};

// Each column starts at a multiple of its element size (typed-array views require it); with
// the u32 columns first and even in number, no padding is ever needed, but the rule holds for
// any order.
inline SlotLayout ComputeSlotLayout(uint32_t slots) {
  SlotLayout l{};
  uint32_t at = 0;
#define AIONBD_SLOT_PLACE(name, type)                          \
  at = (at + sizeof(type) - 1) / sizeof(type) * sizeof(type); \
  l.name = at;                                                 \
  at += static_cast<uint32_t>(sizeof(type)) * slots;
  AIONBD_SLOT_COLUMNS(AIONBD_SLOT_PLACE)
#undef AIONBD_SLOT_PLACE
  l.size = at;
  return l;
}

inline SlotColumns ColumnsOf(uint8_t* table, const SlotLayout& l) {
  SlotColumns c;
#define AIONBD_SLOT_POINT(name, type) c.name = reinterpret_cast<type*>(table + l.name);
  AIONBD_SLOT_COLUMNS(AIONBD_SLOT_POINT)
#undef AIONBD_SLOT_POINT
  return c;
}

// Copies rows [0, n) of every column from one table to another (a table that grew).
inline void CopySlotRows(uint8_t* dst, const SlotLayout& dl, const uint8_t* src, const SlotLayout& sl, uint32_t n) {
#define AIONBD_SLOT_COPY(name, type) std::memcpy(dst + dl.name, src + sl.name, sizeof(type) * static_cast<size_t>(n));
  AIONBD_SLOT_COLUMNS(AIONBD_SLOT_COPY)
#undef AIONBD_SLOT_COPY
}

}  // namespace aionbd
