#include <napi.h>

#include <cstdlib>
#include <cstring>

#include "os_error.h"

namespace aionbd {

// allocAligned(size, alignment): an ArrayBuffer over memory aligned for O_DIRECT. Its backing
// store never moves, so the kernel may DMA into it while JS holds the buffer.
Napi::Value AllocAligned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double size = info[0].As<Napi::Number>().DoubleValue();
  uint32_t align = info[1].As<Napi::Number>().Uint32Value();
  if (!(size > 0) || size > 1.0 * (1u << 31) || align < sizeof(void*) || (align & (align - 1)) != 0) {
    Napi::RangeError::New(env, "allocAligned: bad size or alignment").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t n = static_cast<size_t>(size);
  void* p = nullptr;
  int rc = posix_memalign(&p, align, n);
  if (rc != 0) {
    ThrowOsError(env, "posix_memalign", rc);
    return env.Undefined();
  }
  return Napi::ArrayBuffer::New(env, p, n, [](Napi::Env, void* data) { std::free(data); });
}

// releaseAligned(arrayBuffer): frees the memory of an ArrayBuffer from allocAligned now, by
// detaching it, instead of whenever the garbage collector next runs (an idle server may not
// collect for a long time). Every view of it reads as empty afterwards. Only for buffers no I/O
// refers to any more (the pool's free ones).
Napi::Value ReleaseAligned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer()) {
    Napi::TypeError::New(env, "releaseAligned: expected an ArrayBuffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  if (!ab.IsDetached()) ab.Detach();
  return env.Undefined();
}

}  // namespace aionbd
