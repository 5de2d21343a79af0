// The slot table an I/O engine (Linux AIO, io_uring) shares with JS: one block of memory in the
// layout of slot_layout.h, owned by an ArrayBuffer so that JS views of it stay valid as long as
// they live, even past the engine or a resize.
#pragma once
#include <napi.h>

#include <cstdint>

#include "slot_layout.h"

namespace aionbd {

class SlotTable {
 public:
  // A table of `slots` rows holding the old rows: slots in use keep their number. Sets
  // self.table and self.layout, from which JS builds its new views. False (a JS exception
  // pending, nothing changed) when memory runs out.
  bool Resize(Napi::Env env, Napi::Object self, uint32_t slots);

  uint32_t slots() const { return slots_; }
  // The columns of the current table.
  const SlotColumns& cols() const { return t_; }

 private:
  uint8_t* table_ = nullptr;
  SlotLayout layout_{};
  SlotColumns t_;
  uint32_t slots_ = 0;
  Napi::ObjectReference ref_;
};

}  // namespace aionbd
