// Closing a heap-allocated uv_poll_t, shared by the handles that watch an fd on the main loop
// (AIO engine eventfd, socket I/O, netlink events).
#pragma once
#include <uv.h>

namespace aionbd {

// Stops and closes `poll` and sets it to null. libuv still owns the handle until its close
// callback runs on a later loop turn, so the memory is freed there, not here.
inline void ClosePoll(uv_poll_t*& poll) {
  if (poll == nullptr) return;
  uv_poll_stop(poll);
  uv_close(reinterpret_cast<uv_handle_t*>(poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  poll = nullptr;
}

}  // namespace aionbd
