// What the I/O engines (AioEngine, UringEngine) share beside their slot table: the eventfd
// their kernel objects signal, polled on libuv; the JS buffers array and completion callback;
// and handing completions to JS in batches, one call per batch.
#pragma once
#include <napi.h>
#include <unistd.h>
#include <uv.h>

#include <cstdint>

namespace aionbd {

class CompletionPump {
 public:
  // A non-blocking eventfd; 0, or the errno of eventfd().
  int OpenEventfd();
  int efd() const { return efd_; }

  // Keeps bufs and onComplete, and starts polling the eventfd: onReadable(owner) runs on the loop.
  void Start(Napi::Env env, Napi::Object bufs, Napi::Function onComplete, const char* resource, void* owner, uv_poll_cb onReadable);

  // Also runs onPrepare(owner) each time the loop is about to wait for events (libuv's prepare
  // phase); the handle never keeps the process alive.
  void StartPrepare(Napi::Env env, void* owner, uv_prepare_cb onPrepare);

  // An idle engine must not keep the process alive; one with I/O in flight must.
  void UpdateRef(uint32_t inflight);

  Napi::Object Buffers() { return bufs_.Value(); }

  // Drains the eventfd, then moves completions with reap() (rows written to the table's cq
  // columns) and calls onComplete(n) on recv, until a batch is short of `slots` (a full one may
  // leave more behind) or the engine closed meanwhile. inflight() after each reap keeps the
  // poll's ref right. The caller holds a HandleScope (recv is a handle).
  template <class Reap, class Inflight, class Closed>
  void Deliver(Napi::Env env, Napi::Object recv, uint32_t slots, Reap reap, Inflight inflight, Closed closed) {
    uint64_t ticks;
    // Non-blocking: a spurious wakeup reads EAGAIN and reaps nothing.
    (void)!read(efd_, &ticks, sizeof ticks);
    for (;;) {
      uint32_t n = reap();
      if (n == 0) break;
      UpdateRef(inflight());
      onComplete_.MakeCallback(recv, {Napi::Number::New(env, n)}, *async_);
      if (env.IsExceptionPending()) {
        napi_fatal_exception(env, env.GetAndClearPendingException().Value());
        return;
      }
      if (closed() || n < slots) break;
    }
  }

  // Stops polling, closes the eventfd and drops the references. The callback closes over the JS
  // engine that holds the native engine's wrapper: kept past close(), that cycle runs through a
  // GC root and the engine, the buffers and the wrapper never go.
  void Close();

 private:
  int efd_ = -1;
  uv_poll_t* poll_ = nullptr;
  uv_prepare_t* prepare_ = nullptr;
  Napi::ObjectReference bufs_;
  Napi::FunctionReference onComplete_;
  Napi::AsyncContext* async_ = nullptr;
};

}  // namespace aionbd
