#include "aio_engine.h"

#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "os_error.h"
#include "uv_poll.h"

namespace aionbd {

namespace {

// The kernel's completion ring, mapped into our address space at the context id. Reading it
// directly saves an io_getevents system call per batch (SPDK and fio do the same).
struct AioRing {
  unsigned id;
  unsigned nr;
  unsigned head;
  unsigned tail;
  unsigned magic;
  unsigned compat_features;
  unsigned incompat_features;
  unsigned header_length;
  io_event events[];
};
constexpr unsigned kAioRingMagic = 0xa10a10a1;

long IoSetup(unsigned nr, aio_context_t* ctx) { return syscall(SYS_io_setup, nr, ctx); }
long IoDestroy(aio_context_t ctx) { return syscall(SYS_io_destroy, ctx); }
long IoSubmit(aio_context_t ctx, long n, iocb** cbs) { return syscall(SYS_io_submit, ctx, n, cbs); }
long IoGetevents(aio_context_t ctx, long min, long max, io_event* ev, timespec* ts) {
  return syscall(SYS_io_getevents, ctx, min, max, ev, ts);
}

}  // namespace

Napi::Object SlotLayoutObject(Napi::Env env, const SlotLayout& l) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("op", l.op);
  o.Set("rwFlags", l.rwFlags);
  o.Set("len", l.len);
  o.Set("sq", l.sq);
  o.Set("cqSlot", l.cqSlot);
  o.Set("offset", l.offset);
  o.Set("cqRes", l.cqRes);
  o.Set("size", l.size);
  return o;
}

Napi::Function AioEngine::Init(Napi::Env env) {
  return DefineClass(env, "AioEngine",
                     {
                         InstanceMethod<&AioEngine::Submit>("submit"),
                         InstanceMethod<&AioEngine::Close>("close"),
                         InstanceAccessor<&AioEngine::GetInflight>("inflight"),
                         InstanceAccessor<&AioEngine::GetUserRing>("userRing"),
                     });
}

// new AioEngine(fd, depth, buffers: (Uint8Array | null)[], onComplete(n))
AioEngine::AioEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AioEngine>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsArray() ||
      !info[3].IsFunction()) {
    Napi::TypeError::New(env, "AioEngine(fd, depth, buffers, onComplete)").ThrowAsJavaScriptException();
    return;
  }
  fd_ = info[0].As<Napi::Number>().Int32Value();
  depth_ = info[1].As<Napi::Number>().Uint32Value();
  if (depth_ == 0 || depth_ > 65536) {
    Napi::RangeError::New(env, "queue depth must be 1..65536").ThrowAsJavaScriptException();
    return;
  }
  if (IoSetup(depth_, &ctx_) < 0) {
    ThrowOsError(env, "io_setup", errno);
    return;
  }
  auto* ring = reinterpret_cast<AioRing*>(ctx_);
  userRing_ = ring->magic == kAioRingMagic && ring->incompat_features == 0 &&
              std::getenv("AIONBD_NO_USER_RING") == nullptr;

  efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd_ < 0) {
    int err = errno;
    IoDestroy(ctx_);
    ctx_ = 0;
    ThrowOsError(env, "eventfd", err);
    return;
  }

  layout_ = ComputeSlotLayout(depth_);
  if (posix_memalign(reinterpret_cast<void**>(&table_), 64, layout_.size) != 0) {
    Destroy();
    Napi::Error::New(env, "out of memory for the AIO slot table").ThrowAsJavaScriptException();
    return;
  }
  std::memset(table_, 0, layout_.size);
  op_ = reinterpret_cast<uint32_t*>(table_ + layout_.op);
  rwFlags_ = reinterpret_cast<uint32_t*>(table_ + layout_.rwFlags);
  len_ = reinterpret_cast<uint32_t*>(table_ + layout_.len);
  sq_ = reinterpret_cast<uint32_t*>(table_ + layout_.sq);
  cqSlot_ = reinterpret_cast<uint32_t*>(table_ + layout_.cqSlot);
  offset_ = reinterpret_cast<double*>(table_ + layout_.offset);
  cqRes_ = reinterpret_cast<double*>(table_ + layout_.cqRes);
  iocbs_.resize(depth_);
  batch_.resize(depth_);
  events_.resize(depth_);

  // The ArrayBuffer owns the table: JS views of it stay valid even if they outlive the engine,
  // and the engine keeps it alive for as long as the kernel may write completions into it.
  Napi::ArrayBuffer table =
      Napi::ArrayBuffer::New(env, table_, layout_.size, [](Napi::Env, void* data) { std::free(data); });
  tableRef_ = Napi::Persistent(table.As<Napi::Object>());
  bufs_ = Napi::Persistent(info[2].As<Napi::Object>());
  onComplete_ = Napi::Persistent(info[3].As<Napi::Function>());
  async_ = new Napi::AsyncContext(env, "aionbd:aio");

  Napi::Object self = info.This().As<Napi::Object>();
  self.Set("table", table);
  self.Set("layout", SlotLayoutObject(env, layout_));

  poll_ = OpenPoll(env, efd_, this);
  uv_poll_start(poll_, UV_READABLE, OnReadable);
  UpdateRef();
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  hookAdded_ = true;
}

AioEngine::~AioEngine() { Destroy(); }

// An idle engine must not keep the process alive; one with I/O in flight must.
void AioEngine::UpdateRef() {
  if (poll_ == nullptr) return;
  if (inflight_ > 0)
    uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
  else
    uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
}

// submit(n): submits the slots sq[0..n) with one io_submit. Returns how many the kernel took
// (0 when the ring is full: JS keeps the rest queued), or -errno when the kernel refused the
// first iocb (JS fails that slot alone and submits the rest again).
Napi::Value AioEngine::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) {
    Napi::Error::New(env, "AIO engine is closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t want = info[0].As<Napi::Number>().Uint32Value();
  uint32_t n = std::min(want, depth_ - inflight_);
  Napi::Object bufs = bufs_.Value();
  for (uint32_t i = 0; i < n; i++) {
    uint32_t s = sq_[i];
    if (s >= depth_) {
      Napi::RangeError::New(env, "aio slot out of range").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    iocb& cb = iocbs_[s];
    std::memset(&cb, 0, sizeof cb);
    cb.aio_data = s;
    cb.aio_lio_opcode = static_cast<uint16_t>(op_[s]);
    cb.aio_fildes = static_cast<uint32_t>(fd_);
    cb.aio_rw_flags = static_cast<int>(rwFlags_[s]);
    cb.aio_flags = IOCB_FLAG_RESFD;
    cb.aio_resfd = static_cast<uint32_t>(efd_);
    if (op_[s] == IOCB_CMD_PREAD || op_[s] == IOCB_CMD_PWRITE) {
      // A JS bug must throw here, not let the kernel DMA past the end of a buffer.
      Napi::Value v = bufs.Get(s);
      if (!v.IsTypedArray()) {
        Napi::TypeError::New(env, "aio slot has no buffer").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      Napi::Uint8Array b = v.As<Napi::Uint8Array>();
      if (len_[s] > b.ByteLength()) {
        Napi::RangeError::New(env, "aio length exceeds the slot buffer").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      cb.aio_buf = reinterpret_cast<uintptr_t>(b.Data());
      cb.aio_nbytes = len_[s];
      cb.aio_offset = static_cast<int64_t>(offset_[s]);
    } else if (op_[s] != IOCB_CMD_FDSYNC && op_[s] != IOCB_CMD_FSYNC) {
      Napi::RangeError::New(env, "unknown aio opcode").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    batch_[i] = &cb;
  }
  long rc = n > 0 ? IoSubmit(ctx_, n, batch_.data()) : 0;
  if (rc < 0) rc = errno == EAGAIN ? 0 : -errno;
  if (rc > 0) {
    inflight_ += static_cast<uint32_t>(rc);
    UpdateRef();
  }
  return Napi::Number::New(env, static_cast<double>(rc));
}

// Moves up to depth_ completions into cqSlot/cqRes and returns how many.
uint32_t AioEngine::Reap() {
  uint32_t n = 0;
  if (userRing_) {
    auto* ring = reinterpret_cast<AioRing*>(ctx_);
    unsigned head = ring->head;
    unsigned tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
    unsigned nr = ring->nr;
    while (head != tail && n < depth_) {
      const io_event& ev = ring->events[head];
      cqSlot_[n] = static_cast<uint32_t>(ev.data);
      cqRes_[n] = static_cast<double>(static_cast<int64_t>(ev.res));
      n++;
      head = (head + 1) % nr;
    }
    __atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
  } else {
    timespec zero{0, 0};
    long got = IoGetevents(ctx_, 0, depth_, events_.data(), &zero);
    for (long i = 0; i < got; i++) {
      cqSlot_[n] = static_cast<uint32_t>(events_[i].data);
      cqRes_[n] = static_cast<double>(static_cast<int64_t>(events_[i].res));
      n++;
    }
  }
  inflight_ -= std::min(n, inflight_);
  return n;
}

void AioEngine::OnReadable(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<AioEngine*>(handle->data);
  if (self->closed_) return;
  uint64_t ticks;
  // Non-blocking: a spurious wakeup reads EAGAIN and reaps nothing.
  (void)!read(self->efd_, &ticks, sizeof ticks);
  Napi::Env env(self->env_);
  Napi::HandleScope scope(env);
  // A full batch may leave more behind: reap until a short batch, one JS call per batch.
  for (;;) {
    uint32_t n = self->Reap();
    if (n == 0) break;
    self->UpdateRef();
    self->onComplete_.MakeCallback(self->Value(), {Napi::Number::New(env, n)}, *self->async_);
    if (env.IsExceptionPending()) {
      napi_fatal_exception(env, env.GetAndClearPendingException().Value());
      return;
    }
    if (self->closed_ || n < self->depth_) break;
  }
}

// close(): destroys the context. The kernel's io_destroy waits for in-flight I/O, so buffers
// are never written after this returns; JS normally drains first and calls close() when idle.
Napi::Value AioEngine::Close(const Napi::CallbackInfo& info) {
  Destroy();
  return info.Env().Undefined();
}

void AioEngine::Destroy() {
  if (closed_) return;
  closed_ = true;
  if (ctx_ != 0) {
    IoDestroy(ctx_);
    ctx_ = 0;
  }
  ClosePoll(poll_);
  if (efd_ >= 0) {
    close(efd_);
    efd_ = -1;
  }
  inflight_ = 0;
  if (hookAdded_) {
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
    hookAdded_ = false;
  }
  if (async_ != nullptr) {
    delete async_;
    async_ = nullptr;
  }
  // The callback closes over the JS bdev that holds this object's wrapper: kept past close(),
  // that cycle runs through a GC root and the bdev, its buffers and the wrapper never go.
  if (!onComplete_.IsEmpty()) onComplete_.Reset();
  if (!bufs_.IsEmpty()) bufs_.Reset();
}

// The process is exiting without close(): release the kernel context so aio-nr drops.
void AioEngine::CleanupHook(void* arg) {
  auto* self = static_cast<AioEngine*>(arg);
  self->hookAdded_ = false;
  self->Destroy();
}

Napi::Value AioEngine::GetInflight(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), inflight_);
}

Napi::Value AioEngine::GetUserRing(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), userRing_);
}

}  // namespace aionbd
