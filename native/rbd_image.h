#pragma once
#include <napi.h>
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "rbd_lib.h"
#include "rbd_ops.h"
#include "slot_layout.h"

namespace aionbd {

class RbdCluster;

// What librbd's threads touch: they push finished slots here and wake the main loop through
// the eventfd. Kept apart from the JS wrapper so that it can outlive it (an image left open at
// exit, whose I/O may still complete).
struct RbdImageCore {
  struct SlotCtx {
    RbdImageCore* core;
    uint32_t slot;
  };
  struct Done {
    uint32_t slot;
    int64_t res;
  };

  const RbdLib* lib = nullptr;
  rados_ioctx_t ioctx = nullptr;
  rbd_image_t image = nullptr;
  uint64_t watch = 0;
  bool watching = false;
  int efd = -1;
  std::vector<SlotCtx> slots;
  std::mutex mu;
  std::vector<Done> finished;  // under mu; never grows past depth (one op per slot at a time)
  std::atomic<bool> updated{false};

  void Push(uint32_t slot, int64_t res);
  void Wake();
};

// One open RBD image: JS fills the slot table (the AIO engine's layout) and calls submit(n);
// each slot becomes one rbd_aio_* call whose completion librbd reports on its own thread. The
// completions are queued under a mutex, the main loop is woken by an eventfd that libuv polls,
// and they reach JS in batches, one call per batch. Block status comes from rbd_diff_iterate2
// and size changes from an update watch, both off the main thread.
class RbdImage : public Napi::ObjectWrap<RbdImage> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit RbdImage(const Napi::CallbackInfo& info);
  ~RbdImage() override;

 private:
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value Diff(const Napi::CallbackInfo& info);
  Napi::Value Resize(const Napi::CallbackInfo& info);
  Napi::Value Size(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetInflight(const Napi::CallbackInfo& info);

  bool Usable(Napi::Env env);
  void Reap(uint32_t* n);
  void UpdateRef();
  void StopPoll();
  static void OnReadable(uv_poll_t* handle, int status, int events);
  static void CleanupHook(void* arg);
  static void OnAioDone(rbd_completion_t c, void* arg);
  static void OnUpdate(void* arg);

  RbdImageCore* core_ = nullptr;
  RbdCluster* cluster_ = nullptr;
  Napi::ObjectReference clusterRef_;
  uint32_t depth_ = 0;
  uint32_t inflight_ = 0;
  uint32_t jobs_ = 0;  // open/diff/resize/size/close jobs on the thread pool
  bool open_ = false;
  bool closed_ = false;
  bool hookAdded_ = false;
  napi_env env_ = nullptr;
  uv_poll_t* poll_ = nullptr;

  uint8_t* table_ = nullptr;
  SlotLayout layout_{};
  SlotColumns t_;  // the table's columns (fd unused)
  std::vector<uint8_t> fuaFlushing_;  // a FUA write whose data is done and whose flush runs
  std::vector<RbdImageCore::Done> reaped_;

  Napi::ObjectReference bufs_;
  Napi::ObjectReference tableRef_;
  Napi::FunctionReference onComplete_;
  Napi::FunctionReference onUpdate_;
  Napi::AsyncContext* async_ = nullptr;
};

}  // namespace aionbd
