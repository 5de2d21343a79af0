#include "slot_table.h"

#include <cstdlib>
#include <cstring>

#include "constants.h"

namespace aionbd {

bool SlotTable::Resize(Napi::Env env, Napi::Object self, uint32_t slots) {
  SlotLayout nl = ComputeSlotLayout(slots);
  uint8_t* nt = nullptr;
  if (posix_memalign(reinterpret_cast<void**>(&nt), 64, nl.size) != 0) {
    Napi::Error::New(env, "out of memory for the slot table").ThrowAsJavaScriptException();
    return false;
  }
  std::memset(nt, 0, nl.size);
  if (table_ != nullptr) CopySlotRows(nt, nl, table_, layout_, slots_);
  // The old table goes when its last JS view does.
  Napi::ArrayBuffer table = Napi::ArrayBuffer::New(env, nt, nl.size, [](Napi::Env, void* data) { std::free(data); });
  ref_ = Napi::Persistent(table.As<Napi::Object>());
  self.Set("table", table);
  self.Set("layout", SlotLayoutObject(env, nl));
  table_ = nt;
  layout_ = nl;
  slots_ = slots;
  t_ = ColumnsOf(table_, layout_);
  return true;
}

}  // namespace aionbd
