#include <napi.h>
#include <v8.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace aionbd {

// reduceHeap(): tells V8 that memory is wanted back (a moderate memory-pressure notification).
// V8 then runs an incremental, memory-reducing collection and shrinks the young generation it
// grew during a burst; without it an idle server keeps that heap until its next collection,
// which may be hours away. Node-API has no such call, so this one uses V8's own API: the addon
// is compiled against the Node that runs it (npm install), and this entry point has been
// stable since V8 5.x.
Napi::Value ReduceHeap(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kModerate);
  return info.Env().Undefined();
}

// trimMalloc(): hands the C heap's free pages back to the system (glibc malloc_trim), which it
// otherwise keeps wherever a live allocation sits above them. Returns whether any was released
// (always false where the C library has no malloc_trim, as musl).
Napi::Value TrimMalloc(const Napi::CallbackInfo& info) {
#ifdef __GLIBC__
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

}  // namespace aionbd
