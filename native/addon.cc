#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <napi.h>

#include "aio_engine.h"
#include "nbd_attach.h"
#include "sock_io.h"
#include "slot_layout.h"

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

// slotLayout(depth): the layout the engine uses, so JS can check its own copy in a test.
Napi::Value SlotLayoutOf(const Napi::CallbackInfo& info) {
  return SlotLayoutObject(info.Env(), ComputeSlotLayout(info[0].As<Napi::Number>().Uint32Value()));
}

}  // namespace
}  // namespace aionbd

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  using namespace aionbd;
  exports.Set("AioEngine", AioEngine::Init(env));
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
  // Kernel ABI values, taken from the headers we build against rather than retyped in JS.
  Napi::Object k = Napi::Object::New(env);
  k.Set("IOCB_CMD_PREAD", static_cast<uint32_t>(IOCB_CMD_PREAD));
  k.Set("IOCB_CMD_PWRITE", static_cast<uint32_t>(IOCB_CMD_PWRITE));
  k.Set("IOCB_CMD_FSYNC", static_cast<uint32_t>(IOCB_CMD_FSYNC));
  k.Set("IOCB_CMD_FDSYNC", static_cast<uint32_t>(IOCB_CMD_FDSYNC));
  k.Set("RWF_DSYNC", static_cast<uint32_t>(RWF_DSYNC));
  exports.Set("constants", k);
  return exports;
}

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitAddon)
