#pragma once
#include <linux/io_uring.h>
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine_base.h"

namespace aionbd {

// The most entries one ring is set up with: the kernel's own ceiling (IORING_MAX_ENTRIES, not
// in the UAPI headers). A uring bdev's queue depth is at most this: constants.uring.MAX_RING_ENTRIES.
constexpr uint32_t kMaxRingEntries = 32768;

// The io_uring engine of one Node environment, shared by every uring bdev in it. The same
// JS-facing interface and slot table as AioEngine (aio_engine.h), so that one JS engine drives
// either: one or more rings (more are added as bdevs need room, each holding as many I/Os in
// flight as it was set up for), one eventfd registered with every ring and polled by libuv.
// JS fills slots and calls submit(n) once per batch: the SQEs are written straight from the
// table and one io_uring_enter submits them; the completion rings are read in user space and
// handed to JS in batches, one call per batch. Raw system calls, no liburing.
class UringEngine : public EngineBase<UringEngine> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit UringEngine(const Napi::CallbackInfo& info);
  ~UringEngine() override;

 private:
  friend class EngineBase<UringEngine>;
  static constexpr const char* kClassName = "UringEngine";
  static constexpr const char* kResource = "aionbd:uring";
  static constexpr const char* kLabel = "io_uring";
  static bool IsData(uint32_t op) { return op == IORING_OP_READ || op == IORING_OP_WRITE; }
  static bool IsRead(uint32_t op) { return op == IORING_OP_READ; }
  static bool IsSync(uint32_t op) { return op == IORING_OP_FSYNC; }

  struct Ring {
    int fd = -1;
    uint32_t size = 0;  // I/Os it was set up for: never more in flight on it (its CQ holds twice that)
    uint32_t inflight = 0;
    unsigned* sqHead = nullptr;
    unsigned* sqTail = nullptr;
    unsigned* sqArray = nullptr;
    unsigned sqMask = 0;
    io_uring_sqe* sqes = nullptr;
    unsigned* cqHead = nullptr;
    unsigned* cqTail = nullptr;
    unsigned cqMask = 0;
    io_uring_cqe* cqes = nullptr;
    void* sqMap = nullptr;
    size_t sqMapLen = 0;
    void* cqMap = nullptr;  // sqMap itself when the kernel maps both rings at once
    size_t cqMapLen = 0;
    size_t sqesLen = 0;
  };

  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value GetUserRing(const Napi::CallbackInfo& info);

  std::vector<Ring>& Queues() { return rings_; }
  bool AddQueue(Napi::Env env, Napi::Object self, uint32_t entries);
  int32_t SubmitTo(Ring& r, uint32_t from, uint32_t k, uint32_t* taken);
  uint32_t ReapInto(Ring& r, uint32_t n);
  static bool Peek(const Ring& r) { return *r.cqHead != __atomic_load_n(r.cqTail, __ATOMIC_ACQUIRE); }
  static bool CanPeek(const Ring&) { return true; }
  void ReleaseQueues();

  std::vector<Ring> rings_;
};

}  // namespace aionbd
