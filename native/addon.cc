#include <napi.h>

#include "aio_engine.h"
#include "constants.h"
#include "nbd_attach.h"
#include "sock_io.h"
#include "uring_engine.h"

namespace aionbd {
Napi::Value AllocAligned(const Napi::CallbackInfo& info);
Napi::Value ReleaseAligned(const Napi::CallbackInfo& info);
Napi::Value FileOpAsync(const Napi::CallbackInfo& info);
Napi::Value FileInfo(const Napi::CallbackInfo& info);
Napi::Value OpenFile(const Napi::CallbackInfo& info);
Napi::Value PeerCred(const Napi::CallbackInfo& info);
Napi::Value FileLimit(const Napi::CallbackInfo& info);
Napi::Value ReduceHeap(const Napi::CallbackInfo& info);
Napi::Value TrimMalloc(const Napi::CallbackInfo& info);
Napi::Object RbdInit(Napi::Env env);

namespace {

// slotLayout(slots): the layout of a table of that many slots, for tests of the views JS builds.
Napi::Value SlotLayoutOf(const Napi::CallbackInfo& info) {
  return SlotLayoutObject(info.Env(), ComputeSlotLayout(info[0].As<Napi::Number>().Uint32Value()));
}

}  // namespace
}  // namespace aionbd

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  using namespace aionbd;
  exports.Set("AioEngine", AioEngine::Init(env));
  exports.Set("UringEngine", UringEngine::Init(env));
  exports.Set("SockIo", SockIo::Init(env));
  exports.Set("allocAligned", Napi::Function::New(env, AllocAligned, "allocAligned"));
  exports.Set("releaseAligned", Napi::Function::New(env, ReleaseAligned, "releaseAligned"));
  exports.Set("fileOp", Napi::Function::New(env, FileOpAsync, "fileOp"));
  exports.Set("fileInfo", Napi::Function::New(env, FileInfo, "fileInfo"));
  exports.Set("openFile", Napi::Function::New(env, OpenFile, "openFile"));
  exports.Set("peerCred", Napi::Function::New(env, PeerCred, "peerCred"));
  exports.Set("fileLimit", Napi::Function::New(env, FileLimit, "fileLimit"));
  exports.Set("reduceHeap", Napi::Function::New(env, ReduceHeap, "reduceHeap"));
  exports.Set("trimMalloc", Napi::Function::New(env, TrimMalloc, "trimMalloc"));
  exports.Set("nbd", NbdAttachInit(env));
  exports.Set("rbd", RbdInit(env));
  exports.Set("slotLayout", Napi::Function::New(env, SlotLayoutOf, "slotLayout"));
  exports.Set("constants", ConstantsObject(env));
  return exports;
}

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitAddon)
