#pragma once
#include <napi.h>

#include <atomic>

#include "rbd_lib.h"

namespace aionbd {

// One connection to a Ceph cluster (a rados_t): its monitors, OSD sessions and threads, shared
// by every image opened through it. JS connects it once, opens images on it, and shuts it down
// after the last image has closed.
class RbdCluster : public Napi::ObjectWrap<RbdCluster> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit RbdCluster(const Napi::CallbackInfo& info);
  ~RbdCluster() override;

  // For RbdImage: the connection, or null when not connected (or shut down).
  rados_t Handle() const { return connected_ ? cluster_ : nullptr; }
  const RbdLib* Lib() const { return lib_; }
  void ImageOpened() { images_++; }
  void ImageClosed() { images_--; }

 private:
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value Fsid(const Napi::CallbackInfo& info);
  static void CleanupHook(void* arg);

  const RbdLib* lib_ = nullptr;
  rados_t cluster_ = nullptr;
  bool connected_ = false;
  bool busy_ = false;  // a connect or shutdown job runs
  bool hookAdded_ = false;
  napi_env env_ = nullptr;
  // Images open on this connection; touched on the main thread only.
  std::atomic<int> images_{0};
};

}  // namespace aionbd
