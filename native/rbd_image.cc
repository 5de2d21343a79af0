#include "rbd_image.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "constants.h"  // SlotLayoutObject: the RBD slot table has the AIO engine's layout
#include "os_error.h"
#include "rbd_cluster.h"
#include "rbd_job.h"
#include "uv_poll.h"

namespace aionbd {

namespace {

// At most this many extents per diff call: a caller asks again from where the list stops.
constexpr size_t kMaxExtents = 16384;

struct DiffResult {
  std::vector<double> extents;  // offset, length pairs, merged where they touch
  bool truncated = false;
};

int CollectExtent(uint64_t off, size_t len, int exists, void* arg) {
  auto* r = static_cast<DiffResult*>(arg);
  if (exists == 0) return 0;
  auto& e = r->extents;
  if (!e.empty() && e[e.size() - 2] + e[e.size() - 1] == static_cast<double>(off)) {
    e[e.size() - 1] += static_cast<double>(len);
    return 0;
  }
  if (e.size() / 2 >= kMaxExtents) {
    r->truncated = true;
    return -ECANCELED;  // stops the iteration; what was collected is still right
  }
  e.push_back(static_cast<double>(off));
  e.push_back(static_cast<double>(len));
  return 0;
}

}  // namespace

void RbdImageCore::Wake() {
  uint64_t one = 1;
  // A full counter (never, at 2^64-1) or EAGAIN both leave the fd readable: nothing is lost.
  (void)!write(efd, &one, sizeof one);
}

void RbdImageCore::Push(uint32_t slot, int64_t res) {
  bool wake;
  {
    std::lock_guard<std::mutex> g(mu);
    wake = finished.empty();  // the main loop swaps the list out under the same lock
    finished.push_back({slot, res});
  }
  if (wake) Wake();
}

// librbd's thread: take the result, release the completion, queue the slot.
void RbdImage::OnAioDone(rbd_completion_t c, void* arg) {
  auto* s = static_cast<RbdImageCore::SlotCtx*>(arg);
  const RbdLib* l = s->core->lib;
  int64_t res = l->rbd_aio_get_return_value(c);
  l->rbd_aio_release(c);
  s->core->Push(s->slot, res);
}

// librbd's thread: the image header changed (a resize, by us or anyone).
void RbdImage::OnUpdate(void* arg) {
  auto* core = static_cast<RbdImageCore*>(arg);
  core->updated.store(true);
  core->Wake();
}

Napi::Function RbdImage::Init(Napi::Env env) {
  return DefineClass(env, "RbdImage",
                     {
                         InstanceMethod<&RbdImage::Open>("open"),
                         InstanceMethod<&RbdImage::Submit>("submit"),
                         InstanceMethod<&RbdImage::Diff>("diff"),
                         InstanceMethod<&RbdImage::Resize>("resize"),
                         InstanceMethod<&RbdImage::Size>("size"),
                         InstanceMethod<&RbdImage::Close>("close"),
                         InstanceAccessor<&RbdImage::GetInflight>("inflight"),
                     });
}

// new RbdImage(cluster, depth, buffers: (Uint8Array | null)[], onComplete(n), onUpdate())
RbdImage::RbdImage(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RbdImage>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  if (info.Length() < 5 || !info[0].IsObject() || !info[1].IsNumber() || !info[2].IsArray() ||
      !info[3].IsFunction() || !info[4].IsFunction()) {
    Napi::TypeError::New(env, "RbdImage(cluster, depth, buffers, onComplete, onUpdate)").ThrowAsJavaScriptException();
    return;
  }
  Napi::Object c = info[0].As<Napi::Object>();
  cluster_ = Napi::ObjectWrap<RbdCluster>::Unwrap(c);
  if (cluster_ == nullptr || cluster_->Handle() == nullptr) {
    Napi::Error::New(env, "RbdImage: the cluster is not connected").ThrowAsJavaScriptException();
    return;
  }
  depth_ = info[1].As<Napi::Number>().Uint32Value();
  if (depth_ == 0 || depth_ > 65536) {
    Napi::RangeError::New(env, "queue depth must be 1..65536").ThrowAsJavaScriptException();
    return;
  }
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) {
    ThrowOsError(env, "eventfd", errno);
    return;
  }
  layout_ = ComputeSlotLayout(depth_);
  if (posix_memalign(reinterpret_cast<void**>(&table_), 64, layout_.size) != 0) {
    close(efd);
    Napi::Error::New(env, "out of memory for the RBD slot table").ThrowAsJavaScriptException();
    return;
  }
  std::memset(table_, 0, layout_.size);
  t_ = ColumnsOf(table_, layout_);

  core_ = new RbdImageCore();
  core_->lib = cluster_->Lib();
  core_->efd = efd;
  core_->slots.resize(depth_);
  for (uint32_t i = 0; i < depth_; i++) core_->slots[i] = {core_, i};
  core_->finished.reserve(depth_);
  reaped_.reserve(depth_);
  fuaFlushing_.assign(depth_, 0);

  Napi::ArrayBuffer table =
      Napi::ArrayBuffer::New(env, table_, layout_.size, [](Napi::Env, void* data) { std::free(data); });
  tableRef_ = Napi::Persistent(table.As<Napi::Object>());
  clusterRef_ = Napi::Persistent(c);
  bufs_ = Napi::Persistent(info[2].As<Napi::Object>());
  onComplete_ = Napi::Persistent(info[3].As<Napi::Function>());
  onUpdate_ = Napi::Persistent(info[4].As<Napi::Function>());
  async_ = new Napi::AsyncContext(env, "aionbd:rbd");

  Napi::Object self = info.This().As<Napi::Object>();
  self.Set("table", table);
  self.Set("layout", SlotLayoutObject(env, layout_));

  poll_ = OpenPoll(env, efd, this);
  uv_poll_start(poll_, UV_READABLE, OnReadable);
  UpdateRef();
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  hookAdded_ = true;
}

RbdImage::~RbdImage() {
  if (hookAdded_) napi_remove_env_cleanup_hook(env_, CleanupHook, this);
  StopPoll();
  // Still open (close() never called): librbd may yet call into the core, so it is leaked.
  if (core_ != nullptr && !open_) {
    close(core_->efd);
    delete core_;
  }
  delete async_;
}

void RbdImage::StopPoll() { ClosePoll(poll_); }

// The loop stays alive while I/O or a job is outstanding, and only then.
void RbdImage::UpdateRef() {
  if (poll_ == nullptr) return;
  if (inflight_ > 0)
    uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
  else
    uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
}

bool RbdImage::Usable(Napi::Env env) {
  if (open_ && !closed_) return true;
  Napi::Error::New(env, closed_ ? "RBD image is closed" : "RBD image is not open").ThrowAsJavaScriptException();
  return false;
}

// open(pool, image, readonly, cb(err, { size, features }))
Napi::Value RbdImage::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (open_ || closed_ || jobs_ > 0 || !info[0].IsString() || !info[1].IsString() || !info[3].IsFunction()) {
    Napi::Error::New(env, "open(pool, image, readonly, callback), once").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  rados_t cluster = cluster_->Handle();
  if (cluster == nullptr) {
    Napi::Error::New(env, "RbdImage: the cluster is not connected").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct Opened {
    uint64_t size = 0;
    uint64_t features = 0;
  };
  auto out = std::make_shared<Opened>();
  std::string pool = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  bool ro = info[2].ToBoolean();
  RbdImageCore* core = core_;
  jobs_++;
  cluster_->ImageOpened();  // counted from now: a shutdown must wait for this open
  RbdJob::Start(
      info[3].As<Napi::Function>(), info.This().As<Napi::Object>(), "rados_ioctx_create",
      [core, cluster, pool, name, ro, out](std::string& what) -> int64_t {
        const RbdLib* l = core->lib;
        int rc = l->rados_ioctx_create(cluster, pool.c_str(), &core->ioctx);
        if (rc < 0) return rc;
        what = ro ? "rbd_open_read_only" : "rbd_open";
        rc = ro ? l->rbd_open_read_only(core->ioctx, name.c_str(), &core->image, nullptr)
                : l->rbd_open(core->ioctx, name.c_str(), &core->image, nullptr);
        if (rc >= 0) {
          what = "rbd_get_size";
          rc = l->rbd_get_size(core->image, &out->size);
        }
        if (rc >= 0) {
          what = "rbd_get_features";
          rc = l->rbd_get_features(core->image, &out->features);
        }
        if (rc >= 0) {
          what = "rbd_update_watch";
          rc = l->rbd_update_watch(core->image, &core->watch, RbdImage::OnUpdate, core);
          core->watching = rc >= 0;
        }
        if (rc < 0) {
          if (core->image != nullptr) l->rbd_close(core->image);
          l->rados_ioctx_destroy(core->ioctx);
          core->image = nullptr;
          core->ioctx = nullptr;
        }
        return rc;
      },
      [this, out](Napi::Env e, int64_t rc) -> Napi::Value {
        jobs_--;
        if (rc < 0) {
          cluster_->ImageClosed();
          return e.Undefined();
        }
        open_ = true;
        Napi::Object o = Napi::Object::New(e);
        o.Set("size", static_cast<double>(out->size));
        o.Set("features", static_cast<double>(out->features));
        return o;
      });
  return env.Undefined();
}

// submit(n): starts the slots sq[0..n), all of them: a call librbd refuses completes with its
// -errno through the same queue, so JS never sees a completion inside submit().
Napi::Value RbdImage::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable(env)) return env.Undefined();
  uint32_t n = info[0].As<Napi::Number>().Uint32Value();
  if (n > depth_ - inflight_) {
    Napi::RangeError::New(env, "more RBD slots submitted than are free").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const RbdLib* l = core_->lib;
  rbd_image_t img = core_->image;
  Napi::Object bufs = bufs_.Value();
  for (uint32_t i = 0; i < n; i++) {
    uint32_t s = t_.sq[i];
    if (s >= depth_) {
      Napi::RangeError::New(env, "rbd slot out of range").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    char* data = nullptr;
    if (t_.op[s] == kRbdRead || t_.op[s] == kRbdWrite) {
      // A JS bug must throw here, not let librbd read or write past the end of a buffer.
      Napi::Value v = bufs.Get(s);
      if (!v.IsTypedArray() || t_.len[s] > v.As<Napi::Uint8Array>().ByteLength()) {
        Napi::RangeError::New(env, "rbd slot has no buffer of its length").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      data = reinterpret_cast<char*>(v.As<Napi::Uint8Array>().Data());
    } else if (t_.op[s] > kRbdWriteZeroes) {
      Napi::RangeError::New(env, "unknown rbd op").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    fuaFlushing_[s] = 0;
    auto off = static_cast<uint64_t>(t_.offset[s]);
    size_t len = t_.len[s];
    rbd_completion_t c = nullptr;
    int rc = l->rbd_aio_create_completion(&core_->slots[s], OnAioDone, &c);
    if (rc >= 0) {
      switch (t_.op[s]) {
        case kRbdRead: rc = l->rbd_aio_read(img, off, len, data, c); break;
        case kRbdWrite: rc = l->rbd_aio_write(img, off, len, data, c); break;
        case kRbdFlush: rc = l->rbd_aio_flush(img, c); break;
        case kRbdDiscard: rc = l->rbd_aio_discard(img, off, len, c); break;
        default: {
          // Plain write_zeroes is a discard (objects removed or zeroed): it may leave holes.
          // Thick provisioning writes the zeroes (write-same) and keeps the range allocated.
          int zeroFlags = (t_.rwFlags[s] & kRbdNoHole) != 0 ? RBD_WRITE_ZEROES_FLAG_THICK_PROVISION : 0;
          rc = l->rbd_aio_write_zeroes(img, off, len, c, zeroFlags, 0);
          break;
        }
      }
      if (rc < 0) l->rbd_aio_release(c);
    }
    inflight_++;
    if (rc < 0) core_->Push(s, rc);
  }
  UpdateRef();
  return Napi::Number::New(env, n);
}

// Moves what librbd finished into cqSlot/cqRes as 0 or -errno; a FUA write whose data is done
// goes on with its flush instead.
void RbdImage::Reap(uint32_t* n) {
  {
    std::lock_guard<std::mutex> g(core_->mu);
    std::swap(core_->finished, reaped_);
  }
  const RbdLib* l = core_->lib;
  for (const auto& d : reaped_) {
    uint32_t s = d.slot;
    int64_t res = d.res;
    if (res >= 0 && t_.op[s] == kRbdWrite && (t_.rwFlags[s] & kRbdFua) != 0 && fuaFlushing_[s] == 0) {
      fuaFlushing_[s] = 1;
      rbd_completion_t c = nullptr;
      int rc = l->rbd_aio_create_completion(&core_->slots[s], OnAioDone, &c);
      if (rc >= 0) {
        rc = l->rbd_aio_flush(core_->image, c);
        if (rc < 0) l->rbd_aio_release(c);
      }
      if (rc >= 0) continue;
      res = rc;
    }
    if (res >= 0) res = (t_.op[s] == kRbdRead && res != t_.len[s]) ? -EIO : 0;  // a short read is never a success
    t_.cqSlot[*n] = s;
    t_.cqRes[*n] = static_cast<double>(res);
    (*n)++;
  }
  reaped_.clear();
}

void RbdImage::OnReadable(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<RbdImage*>(handle->data);
  if (self->closed_ || self->core_ == nullptr) return;
  uint64_t ticks;
  (void)!read(self->core_->efd, &ticks, sizeof ticks);  // non-blocking; spurious wakeups read EAGAIN
  Napi::Env env(self->env_);
  Napi::HandleScope scope(env);
  uint32_t n = 0;
  self->Reap(&n);
  if (n > 0) {
    self->inflight_ -= std::min(n, self->inflight_);
    self->UpdateRef();
    self->onComplete_.MakeCallback(self->Value(), {Napi::Number::New(env, n)}, *self->async_);
    if (env.IsExceptionPending()) {
      napi_fatal_exception(env, env.GetAndClearPendingException().Value());
      return;
    }
  }
  if (!self->closed_ && self->core_->updated.exchange(false)) {
    self->onUpdate_.MakeCallback(self->Value(), {}, *self->async_);
    if (env.IsExceptionPending()) napi_fatal_exception(env, env.GetAndClearPendingException().Value());
  }
}

// diff(offset, length, cb(err, { extents: Float64Array, truncated })): the allocated extents of
// the range, whole objects at a time (rbd_diff_iterate2 with whole_object, which reads the
// object map where the image has fast-diff instead of asking every object).
Napi::Value RbdImage::Diff(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable(env)) return env.Undefined();
  auto off = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
  auto len = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
  auto out = std::make_shared<DiffResult>();
  RbdImageCore* core = core_;
  jobs_++;
  RbdJob::Start(
      info[2].As<Napi::Function>(), info.This().As<Napi::Object>(), "rbd_diff_iterate2",
      [core, off, len, out](std::string&) -> int64_t {
        int rc = core->lib->rbd_diff_iterate2(core->image, nullptr, off, len, 1, 1, CollectExtent, out.get());
        return rc == -ECANCELED && out->truncated ? 0 : rc;
      },
      [this, out](Napi::Env e, int64_t) -> Napi::Value {
        jobs_--;
        Napi::Float64Array a = Napi::Float64Array::New(e, out->extents.size());
        std::copy(out->extents.begin(), out->extents.end(), a.Data());
        Napi::Object o = Napi::Object::New(e);
        o.Set("extents", a);
        o.Set("truncated", out->truncated);
        return o;
      });
  return env.Undefined();
}

// resize(bytes, cb(err))
Napi::Value RbdImage::Resize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable(env)) return env.Undefined();
  auto bytes = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
  RbdImageCore* core = core_;
  jobs_++;
  RbdJob::Start(
      info[1].As<Napi::Function>(), info.This().As<Napi::Object>(), "rbd_resize",
      [core, bytes](std::string&) -> int64_t { return core->lib->rbd_resize(core->image, bytes); },
      [this](Napi::Env e, int64_t) -> Napi::Value {
        jobs_--;
        return e.Undefined();
      });
  return env.Undefined();
}

// size(cb(err, bytes)): reads the header again if it changed.
Napi::Value RbdImage::Size(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable(env)) return env.Undefined();
  RbdImageCore* core = core_;
  auto size = std::make_shared<uint64_t>(0);
  jobs_++;
  RbdJob::Start(
      info[0].As<Napi::Function>(), info.This().As<Napi::Object>(), "rbd_get_size",
      [core, size](std::string&) -> int64_t { return core->lib->rbd_get_size(core->image, size.get()); },
      [this, size](Napi::Env e, int64_t) -> Napi::Value {
        jobs_--;
        return Napi::Number::New(e, static_cast<double>(*size));
      });
  return env.Undefined();
}

// close(cb(err)): JS calls it when nothing is in flight. rbd_close flushes and may wait on the
// cluster (bounded by rados_osd_op_timeout), so it runs on the thread pool.
Napi::Value RbdImage::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Function cb = info[0].As<Napi::Function>();
  if (closed_) {
    cb.Call({env.Null()});
    return env.Undefined();
  }
  if (inflight_ > 0 || jobs_ > 0) {
    Napi::Error::New(env, "RBD image close() while I/O or a job is outstanding").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  closed_ = true;
  if (!open_) {
    StopPoll();
    cb.Call({env.Null()});
    return env.Undefined();
  }
  RbdImageCore* core = core_;
  jobs_++;
  RbdJob::Start(
      cb, info.This().As<Napi::Object>(), "rbd_close",
      [core](std::string&) -> int64_t {
        const RbdLib* l = core->lib;
        if (core->watching) l->rbd_update_unwatch(core->image, core->watch);  // waits for a running callback
        int rc = l->rbd_close(core->image);
        l->rados_ioctx_destroy(core->ioctx);
        return rc;
      },
      [this](Napi::Env e, int64_t) -> Napi::Value {
        jobs_--;
        open_ = false;
        cluster_->ImageClosed();
        StopPoll();
        close(core_->efd);
        delete core_;
        core_ = nullptr;
        onComplete_.Reset();
        onUpdate_.Reset();
        bufs_.Reset();
        return e.Undefined();
      });
  return env.Undefined();
}

Napi::Value RbdImage::GetInflight(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), inflight_); }

// The process exits with the image open: close it now if nothing is in flight, so that the
// cluster connection can be shut down after it; otherwise librbd may still complete into the
// core, which is then left to the exit.
void RbdImage::CleanupHook(void* arg) {
  auto* self = static_cast<RbdImage*>(arg);
  self->hookAdded_ = false;
  self->StopPoll();
  if (self->open_ && self->inflight_ == 0 && self->jobs_ == 0) {
    const RbdLib* l = self->core_->lib;
    if (self->core_->watching) l->rbd_update_unwatch(self->core_->image, self->core_->watch);
    l->rbd_close(self->core_->image);
    l->rados_ioctx_destroy(self->core_->ioctx);
    self->open_ = false;
    self->cluster_->ImageClosed();
  }
  self->closed_ = true;
}

}  // namespace aionbd
