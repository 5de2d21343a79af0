#pragma once
#include <linux/aio_abi.h>
#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <vector>

#include "slot_layout.h"

namespace aionbd {

// The slot table's offsets as a JS object: the engine's `layout`, and slotLayout(depth) for tests.
Napi::Object SlotLayoutObject(Napi::Env env, const SlotLayout& l);

// One Linux AIO context bound to one file descriptor. JS fills the slot table and calls
// submit(n) once per batch; completions are signalled on an eventfd polled by libuv and handed
// to JS in batches, one call per batch. The engine never owns the fd, and never keeps a
// pointer into JS memory beyond an I/O's life: the buffers array it references holds them.
class AioEngine : public Napi::ObjectWrap<AioEngine> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit AioEngine(const Napi::CallbackInfo& info);
  ~AioEngine() override;

 private:
  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetInflight(const Napi::CallbackInfo& info);
  Napi::Value GetUserRing(const Napi::CallbackInfo& info);

  static void OnReadable(uv_poll_t* handle, int status, int events);
  static void CleanupHook(void* arg);
  uint32_t Reap();
  void UpdateRef();
  void Destroy();

  aio_context_t ctx_ = 0;
  int fd_ = -1;
  int efd_ = -1;
  uint32_t depth_ = 0;
  uint32_t inflight_ = 0;
  bool userRing_ = false;
  bool closed_ = false;
  bool hookAdded_ = false;
  uv_poll_t* poll_ = nullptr;
  napi_env env_ = nullptr;

  uint8_t* table_ = nullptr;  // slot table, owned here, viewed from JS
  SlotLayout layout_{};
  uint32_t* op_ = nullptr;
  uint32_t* rwFlags_ = nullptr;
  uint32_t* len_ = nullptr;
  uint32_t* sq_ = nullptr;
  uint32_t* cqSlot_ = nullptr;
  double* offset_ = nullptr;
  double* cqRes_ = nullptr;

  std::vector<iocb> iocbs_;
  std::vector<iocb*> batch_;
  std::vector<io_event> events_;
  Napi::ObjectReference bufs_;
  Napi::ObjectReference tableRef_;
  Napi::FunctionReference onComplete_;
  Napi::AsyncContext* async_ = nullptr;
};

}  // namespace aionbd
