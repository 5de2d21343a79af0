// Opening and closing a heap-allocated uv_poll_t on the main loop, shared by the handles that
// watch an fd (AIO engine eventfd, socket I/O, netlink events).
#pragma once
#include <node_api.h>
#include <uv.h>

namespace aionbd {

// A poll handle for `fd` on the env's loop, not started, with `data` set.
inline uv_poll_t* OpenPoll(napi_env env, int fd, void* data) {
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  auto* poll = new uv_poll_t;
  uv_poll_init(loop, poll, fd);
  poll->data = data;
  return poll;
}

// Stops and closes `poll` and sets it to null. libuv still owns the handle until its close
// callback runs on a later loop turn, so the memory is freed there, not here.
inline void ClosePoll(uv_poll_t*& poll) {
  if (poll == nullptr) return;
  uv_poll_stop(poll);
  uv_close(reinterpret_cast<uv_handle_t*>(poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  poll = nullptr;
}

}  // namespace aionbd
