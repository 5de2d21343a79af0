// The operations of an RBD image's slot table (its op column) and its rwFlags bits: kRbdFua
// (WRITE: flush after), kRbdNoHole (WRITE_ZEROES: keep the range allocated).
// Apart from rbd_image.h so that every build exports them (constants.rbd), RBD or not.
#pragma once
#include <cstdint>

namespace aionbd {

enum RbdOp : uint32_t { kRbdRead = 0, kRbdWrite = 1, kRbdFlush = 2, kRbdDiscard = 3, kRbdWriteZeroes = 4 };
constexpr uint32_t kRbdFua = 1;
constexpr uint32_t kRbdNoHole = 2;

}  // namespace aionbd
