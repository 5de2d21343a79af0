// The operations of an RBD image's slot table (its op column) and its FUA bit (in rwFlags).
// Apart from rbd_image.h so that every build exports them (constants.rbd), RBD or not.
#pragma once
#include <cstdint>

namespace aionbd {

enum RbdOp : uint32_t { kRbdRead = 0, kRbdWrite = 1, kRbdFlush = 2, kRbdDiscard = 3, kRbdWriteZeroes = 4 };
constexpr uint32_t kRbdFua = 1;

}  // namespace aionbd
