#pragma once
#include <linux/aio_abi.h>
#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <vector>

#include "completion_pump.h"
#include "slot_table.h"

namespace aionbd {

// One context never holds more: io_setup's own ceiling is far above, but a table this size is
// already 10 MiB, and aio-max-nr defaults to 65536 for the whole machine. A bdev's queue depth
// is at most this (JS grows a context to the largest depth): constants.aio.MAX_CONTEXT_EVENTS.
constexpr uint32_t kMaxContextEvents = 65536;

// The Linux AIO engine of one Node environment, shared by every AIO bdev in it: one or more
// kernel AIO contexts (more are added as bdevs need room; each holds as many events as it was
// set up with), one eventfd polled by libuv, one slot table. JS fills slots (each naming its
// fd) and calls submit(n) once per batch; completions of every context are handed to JS in
// batches, one call per batch. The engine never owns a bdev's fd, and never keeps a pointer
// into JS memory beyond an I/O's life: the buffers array it references holds them.
class AioEngine : public Napi::ObjectWrap<AioEngine> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit AioEngine(const Napi::CallbackInfo& info);
  ~AioEngine() override;

 private:
  struct Context {
    aio_context_t id;
    uint32_t size;      // events it was set up with: never more in flight on it
    uint32_t inflight;
    bool userRing;      // its completion ring can be read in user space
  };

  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value Grow(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetInflight(const Napi::CallbackInfo& info);
  Napi::Value GetUserRing(const Napi::CallbackInfo& info);
  Napi::Value GetCapacity(const Napi::CallbackInfo& info);
  Napi::Value GetContexts(const Napi::CallbackInfo& info);

  static void OnReadable(uv_poll_t* handle, int status, int events);
  static void CleanupHook(void* arg);
  bool AddContext(Napi::Env env, Napi::Object self, uint32_t events);
  bool ResizeTable(Napi::Env env, Napi::Object self, uint32_t slots);
  uint32_t ReapInto(Context& c, uint32_t n);
  uint32_t Reap();
  void Destroy();

  std::vector<Context> ctxs_;
  uint32_t inflight_ = 0;
  bool noUserRing_ = false;
  bool closed_ = false;
  bool hookAdded_ = false;
  napi_env env_ = nullptr;
  CompletionPump pump_;

  SlotTable table_;  // as many slots as the contexts' sizes add up to: JS never has more in use

  std::vector<iocb> iocbs_;
  std::vector<iocb*> batch_;
  std::vector<io_event> events_;
};

}  // namespace aionbd
