#pragma once
#include <linux/aio_abi.h>
#include <napi.h>

#include <cstdint>
#include <vector>

#include "engine_base.h"

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
class AioEngine : public EngineBase<AioEngine> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit AioEngine(const Napi::CallbackInfo& info);
  ~AioEngine() override;

 private:
  friend class EngineBase<AioEngine>;
  static constexpr const char* kClassName = "AioEngine";
  static constexpr const char* kResource = "aionbd:aio";
  static constexpr const char* kLabel = "AIO";
  static bool IsData(uint32_t op) { return op == IOCB_CMD_PREAD || op == IOCB_CMD_PWRITE; }
  static bool IsRead(uint32_t op) { return op == IOCB_CMD_PREAD; }
  static bool IsSync(uint32_t op) { return op == IOCB_CMD_FDSYNC || op == IOCB_CMD_FSYNC; }

  struct Context {
    aio_context_t id;
    uint32_t size;      // events it was set up with: never more in flight on it
    uint32_t inflight;
    bool userRing;      // its completion ring can be read in user space
  };

  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value GetUserRing(const Napi::CallbackInfo& info);

  std::vector<Context>& Queues() { return ctxs_; }
  bool AddQueue(Napi::Env env, Napi::Object self, uint32_t events);
  uint32_t ReapInto(Context& c, uint32_t n);
  static bool Peek(const Context& c);
  static bool CanPeek(const Context& c) { return c.userRing; }
  void ReleaseQueues();

  std::vector<Context> ctxs_;
  bool noUserRing_ = false;

  std::vector<iocb> iocbs_;
  std::vector<iocb*> batch_;
  std::vector<io_event> events_;
};

}  // namespace aionbd
