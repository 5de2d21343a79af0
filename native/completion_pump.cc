#include "completion_pump.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "uv_poll.h"

namespace aionbd {

int CompletionPump::OpenEventfd() {
  efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return efd_ < 0 ? errno : 0;
}

void CompletionPump::Start(Napi::Env env, Napi::Object bufs, Napi::Function onComplete, const char* resource, void* owner,
                           uv_poll_cb onReadable) {
  bufs_ = Napi::Persistent(bufs);
  onComplete_ = Napi::Persistent(onComplete);
  async_ = new Napi::AsyncContext(env, resource);
  poll_ = OpenPoll(env, efd_, owner);
  uv_poll_start(poll_, UV_READABLE, onReadable);
}

void CompletionPump::StartPrepare(Napi::Env env, void* owner, uv_prepare_cb onPrepare) {
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  prepare_ = new uv_prepare_t;
  uv_prepare_init(loop, prepare_);
  prepare_->data = owner;
  uv_prepare_start(prepare_, onPrepare);
  uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));
}

void CompletionPump::UpdateRef(uint32_t inflight) {
  if (poll_ == nullptr) return;
  if (inflight > 0)
    uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
  else
    uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
}

void CompletionPump::Close() {
  ClosePoll(poll_);
  if (prepare_ != nullptr) {
    uv_prepare_stop(prepare_);
    uv_close(reinterpret_cast<uv_handle_t*>(prepare_), [](uv_handle_t* h) { delete reinterpret_cast<uv_prepare_t*>(h); });
    prepare_ = nullptr;
  }
  if (efd_ >= 0) {
    close(efd_);
    efd_ = -1;
  }
  if (async_ != nullptr) {
    delete async_;
    async_ = nullptr;
  }
  if (!onComplete_.IsEmpty()) onComplete_.Reset();
  if (!bufs_.IsEmpty()) bufs_.Reset();
}

}  // namespace aionbd
