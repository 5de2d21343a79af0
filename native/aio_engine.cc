#include "aio_engine.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "constants.h"
#include "os_error.h"

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

Napi::Function AioEngine::Init(Napi::Env env) {
  return DefineClass(env, "AioEngine",
                     {
                         InstanceMethod<&AioEngine::Submit>("submit"),
                         InstanceMethod<&AioEngine::Grow>("grow"),
                         InstanceMethod<&AioEngine::Close>("close"),
                         InstanceAccessor<&AioEngine::GetInflight>("inflight"),
                         InstanceAccessor<&AioEngine::GetUserRing>("userRing"),
                         InstanceAccessor<&AioEngine::GetCapacity>("capacity"),
                         InstanceAccessor<&AioEngine::GetContexts>("contexts"),
                     });
}

// new AioEngine(events, buffers: (Uint8Array | null)[], onComplete(n)): the first context.
AioEngine::AioEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AioEngine>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsArray() || !info[2].IsFunction()) {
    Napi::TypeError::New(env, "AioEngine(events, buffers, onComplete)").ThrowAsJavaScriptException();
    return;
  }
  noUserRing_ = std::getenv("AIONBD_NO_USER_RING") != nullptr;
  // io_setup first: when aio-max-nr is exhausted, nothing else was made (no fd to wait for GC).
  if (!AddContext(env, info.This().As<Napi::Object>(), info[0].As<Napi::Number>().Uint32Value())) return;
  if (int err = pump_.OpenEventfd(); err != 0) {
    Destroy();
    ThrowOsError(env, "eventfd", err);
    return;
  }
  pump_.Start(env, info[1].As<Napi::Object>(), info[2].As<Napi::Function>(), "aionbd:aio", this, OnReadable);
  pump_.UpdateRef(inflight_);
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  hookAdded_ = true;
}

AioEngine::~AioEngine() { Destroy(); }

// io_setup(events) and room for as many more slots. Throws (and returns false) with nothing
// changed when either fails; the OsError's syscall tells JS which.
bool AioEngine::AddContext(Napi::Env env, Napi::Object self, uint32_t events) {
  if (events == 0 || events > kMaxContextEvents) {
    Napi::RangeError::New(env, "AIO context events must be 1.." + std::to_string(kMaxContextEvents)).ThrowAsJavaScriptException();
    return false;
  }
  aio_context_t id = 0;
  if (IoSetup(events, &id) < 0) {
    ThrowOsError(env, "io_setup", errno);
    return false;
  }
  if (!ResizeTable(env, self, table_.slots() + events)) {
    IoDestroy(id);
    return false;
  }
  auto* ring = reinterpret_cast<AioRing*>(id);
  bool user = !noUserRing_ && ring->magic == kAioRingMagic && ring->incompat_features == 0;
  ctxs_.push_back(Context{id, events, 0, user});
  return true;
}

// Room for `slots` slots, the old ones kept; the iocb arrays follow.
bool AioEngine::ResizeTable(Napi::Env env, Napi::Object self, uint32_t slots) {
  if (!table_.Resize(env, self, slots)) return false;
  iocbs_.resize(slots);
  batch_.resize(slots);
  events_.resize(slots);
  return true;
}

// grow(events): one more context of `events` events, and as many more slots. Throws an OsError
// (syscall io_setup) when the kernel refuses it; the engine then goes on as it was.
Napi::Value AioEngine::Grow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) {
    Napi::Error::New(env, "AIO engine is closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  AddContext(env, info.This().As<Napi::Object>(), info[0].As<Napi::Number>().Uint32Value());
  return env.Undefined();
}

// submit(n): submits the slots sq[0..n), filling the contexts in order, one io_submit per
// context used (one for a batch that fits the first context with room). Returns how many the
// kernel took (0 when every ring is full: JS keeps the rest queued), or -errno when the kernel
// refused the first iocb (JS fails that slot alone and submits the rest again).
Napi::Value AioEngine::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) {
    Napi::Error::New(env, "AIO engine is closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t want = std::min(info[0].As<Napi::Number>().Uint32Value(), table_.slots() - std::min(inflight_, table_.slots()));
  Napi::Object bufs = pump_.Buffers();
  const SlotColumns& t = table_.cols();
  for (uint32_t i = 0; i < want; i++) {
    uint32_t s = t.sq[i];
    if (s >= table_.slots()) {
      Napi::RangeError::New(env, "aio slot out of range").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    iocb& cb = iocbs_[s];
    std::memset(&cb, 0, sizeof cb);
    cb.aio_data = s;
    cb.aio_lio_opcode = static_cast<uint16_t>(t.op[s]);
    cb.aio_fildes = t.fd[s];
    cb.aio_rw_flags = static_cast<int>(t.rwFlags[s]);
    cb.aio_flags = IOCB_FLAG_RESFD;
    cb.aio_resfd = static_cast<uint32_t>(pump_.efd());
    if (t.op[s] == IOCB_CMD_PREAD || t.op[s] == IOCB_CMD_PWRITE) {
      // A JS bug must throw here, not let the kernel DMA past the end of a buffer.
      Napi::Value v = bufs.Get(s);
      if (!v.IsTypedArray()) {
        Napi::TypeError::New(env, "aio slot has no buffer").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      Napi::Uint8Array b = v.As<Napi::Uint8Array>();
      if (t.len[s] > b.ByteLength()) {
        Napi::RangeError::New(env, "aio length exceeds the slot buffer").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      cb.aio_buf = reinterpret_cast<uintptr_t>(b.Data());
      cb.aio_nbytes = t.len[s];
      cb.aio_offset = static_cast<int64_t>(t.offset[s]);
    } else if (t.op[s] != IOCB_CMD_FDSYNC && t.op[s] != IOCB_CMD_FSYNC) {
      Napi::RangeError::New(env, "unknown aio opcode").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    batch_[i] = &cb;
  }
  uint32_t done = 0;
  for (Context& c : ctxs_) {
    if (done == want) break;
    uint32_t room = c.size - c.inflight;
    if (room == 0) continue;
    uint32_t k = std::min(room, want - done);
    long rc = IoSubmit(c.id, k, batch_.data() + done);
    if (rc < 0) {
      if (errno == EAGAIN) continue;  // this ring is full after all: the next may have room
      if (done == 0) return Napi::Number::New(env, -errno);
      break;  // the next submit() starts with the refused iocb and reports it
    }
    c.inflight += static_cast<uint32_t>(rc);
    done += static_cast<uint32_t>(rc);
    if (static_cast<uint32_t>(rc) < k) break;  // the kernel stopped at an iocb: as above
  }
  if (done > 0) {
    inflight_ += done;
    pump_.UpdateRef(inflight_);
  }
  return Napi::Number::New(env, done);
}

// Moves completions of context c into cqSlot/cqRes from row n on, as many as fit; returns the
// new row count.
uint32_t AioEngine::ReapInto(Context& c, uint32_t n) {
  uint32_t start = n;
  const SlotColumns& t = table_.cols();
  if (c.userRing) {
    auto* ring = reinterpret_cast<AioRing*>(c.id);
    unsigned head = ring->head;
    unsigned tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
    unsigned nr = ring->nr;
    while (head != tail && n < table_.slots()) {
      const io_event& ev = ring->events[head];
      t.cqSlot[n] = static_cast<uint32_t>(ev.data);
      t.cqRes[n] = static_cast<double>(static_cast<int64_t>(ev.res));
      n++;
      head = (head + 1) % nr;
    }
    __atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
  } else {
    timespec zero{0, 0};
    long got = IoGetevents(c.id, 0, table_.slots() - n, events_.data(), &zero);
    for (long i = 0; i < got; i++) {
      t.cqSlot[n] = static_cast<uint32_t>(events_[i].data);
      t.cqRes[n] = static_cast<double>(static_cast<int64_t>(events_[i].res));
      n++;
    }
  }
  uint32_t got = n - start;
  c.inflight -= std::min(got, c.inflight);
  inflight_ -= std::min(got, inflight_);
  return n;
}

// Every context's completions, up to one row per slot.
uint32_t AioEngine::Reap() {
  uint32_t n = 0;
  for (Context& c : ctxs_) {
    if (n == table_.slots()) break;
    if (c.inflight > 0) n = ReapInto(c, n);
  }
  return n;
}

void AioEngine::OnReadable(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<AioEngine*>(handle->data);
  if (self->closed_) return;
  Napi::Env env(self->env_);
  Napi::HandleScope scope(env);
  self->pump_.Deliver(
      env, self->Value(), self->table_.slots(), [self] { return self->Reap(); }, [self] { return self->inflight_; },
      [self] { return self->closed_; });
}

// close(): destroys every context. The kernel's io_destroy waits for in-flight I/O, so buffers
// are never written after this returns; JS drains first and calls close() when idle.
Napi::Value AioEngine::Close(const Napi::CallbackInfo& info) {
  Destroy();
  return info.Env().Undefined();
}

void AioEngine::Destroy() {
  if (closed_) return;
  closed_ = true;
  for (Context& c : ctxs_) IoDestroy(c.id);
  ctxs_.clear();
  pump_.Close();
  inflight_ = 0;
  if (hookAdded_) {
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
    hookAdded_ = false;
  }
}

// The process is exiting without close(): release the kernel contexts so aio-nr drops.
void AioEngine::CleanupHook(void* arg) {
  auto* self = static_cast<AioEngine*>(arg);
  self->hookAdded_ = false;
  self->Destroy();
}

Napi::Value AioEngine::GetInflight(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), inflight_);
}

// True when every context's ring is read in user space.
Napi::Value AioEngine::GetUserRing(const Napi::CallbackInfo& info) {
  bool all = !ctxs_.empty();
  for (const Context& c : ctxs_) all = all && c.userRing;
  return Napi::Boolean::New(info.Env(), all);
}

Napi::Value AioEngine::GetCapacity(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), table_.slots());
}

Napi::Value AioEngine::GetContexts(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(ctxs_.size()));
}

}  // namespace aionbd
