// What JS reads instead of retyping: the addon's one `constants` object, and slot layouts as
// JS objects. Each value is taken from where the native code defines it (kernel headers,
// slot_layout.h, file_ops.h, sock_io.h, rbd_ops.h, nbd_attach.h); src/native.ts types them.
#pragma once
#include <napi.h>

#include "slot_layout.h"

namespace aionbd {

// constants = { aio, uring, fileOp, sockEvent, slot, nbd, rbd }: see constants.cc.
Napi::Object ConstantsObject(Napi::Env env);

// A table's byte offsets as { op, rwFlags, ..., size }: the `layout` of an AIO engine or an RBD
// image, and slotLayout(n).
Napi::Object SlotLayoutObject(Napi::Env env, const SlotLayout& l);

}  // namespace aionbd
