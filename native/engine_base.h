// What the two I/O engines (AioEngine: Linux AIO; UringEngine: io_uring) are beside their kernel
// queues: one JS interface (submit, grow, close, inflight, userRing, capacity, contexts, spins, spinTries), the slot
// table shared with JS, the completion pump, growing by one more kernel queue, checking a batch
// before the kernel sees it, reaping every queue in turn, spinning on the rings for a lone
// request (spin_choice.h), and closing.
//
// The engine D derives from EngineBase<D> and supplies: its queues (Queues(), each with `size`
// and `inflight`), AddQueue() (one more kernel queue and as many more slots, via ResizeTable),
// ReapInto(), Peek() (a queue's ring holds completions), Submit(), GetUserRing(), ReleaseQueues(),
// its names (kClassName, kResource, kLabel) and opcode tests (IsData, IsRead, IsSync).
// D's destructor calls Destroy(): a base destructor would run after D's members are gone.
#pragma once
#include <napi.h>
#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "completion_pump.h"
#include "os_error.h"
#include "spin_choice.h"
#include "slot_table.h"

namespace aionbd {

template <class D>
class EngineBase : public Napi::ObjectWrap<D> {
 public:
  explicit EngineBase(const Napi::CallbackInfo& info) : Napi::ObjectWrap<D>(info) {}

 protected:
  using Wrap = Napi::ObjectWrap<D>;

  // The JS class of D, named D::kClassName.
  static Napi::Function DefineEngine(Napi::Env env) {
    using Method = Napi::Value (D::*)(const Napi::CallbackInfo&);
    Method submit = &D::Submit, grow = &EngineBase::Grow, close = &EngineBase::Close;
    Method inflight = &EngineBase::GetInflight, userRing = &D::GetUserRing, capacity = &EngineBase::GetCapacity,
           contexts = &EngineBase::GetContexts, spins = &EngineBase::GetSpins, spinTries = &EngineBase::GetSpinTries;
    return Wrap::DefineClass(env, D::kClassName,
                             {
                                 Wrap::InstanceMethod("submit", submit),
                                 Wrap::InstanceMethod("grow", grow),
                                 Wrap::InstanceMethod("close", close),
                                 Wrap::InstanceAccessor("inflight", inflight, nullptr),
                                 Wrap::InstanceAccessor("userRing", userRing, nullptr),
                                 Wrap::InstanceAccessor("capacity", capacity, nullptr),
                                 Wrap::InstanceAccessor("contexts", contexts, nullptr),
                                 Wrap::InstanceAccessor("spins", spins, nullptr),
                                 Wrap::InstanceAccessor("spinTries", spinTries, nullptr),
                             });
  }

  // The constructor's work, D's own fields set: new D(size, buffers, onComplete) opens the
  // eventfd (every kernel queue signals it, so it comes first), the first queue of `size`, and
  // starts the pump. On failure a JS exception is pending and everything is closed.
  void Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    env_ = env;
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsArray() || !info[2].IsFunction()) {
      Napi::TypeError::New(env, std::string(D::kClassName) + "(size, buffers, onComplete)").ThrowAsJavaScriptException();
      return;
    }
    if (int err = pump_.OpenEventfd(); err != 0) {
      Destroy();
      ThrowOsError(env, "eventfd", err);
      return;
    }
    if (!Self().AddQueue(env, info.This().As<Napi::Object>(), info[0].As<Napi::Number>().Uint32Value())) {
      Destroy();
      return;
    }
    pump_.Start(env, info[1].As<Napi::Object>(), info[2].As<Napi::Function>(), D::kResource, this, OnReadable);
    pump_.UpdateRef(inflight_);
    const char* us = std::getenv("AIONBD_SPIN_US");
    spin_ = SpinChoice(us != nullptr ? std::strtoull(us, nullptr, 10) * 1000 : kDefaultSpinNs);
    if (spin_.maxNs() > 0) pump_.StartPrepare(env, this, OnPrepare);
    napi_add_env_cleanup_hook(env, CleanupHook, this);
    hookAdded_ = true;
  }

  // Room for `slots` slots, the old ones kept (slots in use keep their number).
  bool ResizeTable(Napi::Env env, Napi::Object self, uint32_t slots) {
    if (!table_.Resize(env, self, slots)) return false;
    addr_.resize(slots);
    return true;
  }

  // False, with a JS error thrown, once the engine is closed.
  bool Usable(Napi::Env env) {
    if (!closed_) return true;
    Napi::Error::New(env, std::string(D::kLabel) + " engine is closed").ThrowAsJavaScriptException();
    return false;
  }

  // How many of submit(n)'s rows fit beside what is in flight.
  uint32_t Wanted(const Napi::CallbackInfo& info) const {
    uint32_t slots = table_.slots();
    return std::min(info[0].As<Napi::Number>().Uint32Value(), slots - std::min(inflight_, slots));
  }

  // Checks the batch rows sq[0..want) and puts each one's buffer address in addr_[row] (0 for a
  // sync). Every row is checked before any reaches the kernel: a JS bug throws here, and never
  // lets the kernel DMA past the end of a buffer. False with a JS exception pending.
  bool CheckBatch(Napi::Env env, uint32_t want) {
    Napi::Object bufs = pump_.Buffers();
    const SlotColumns& t = table_.cols();
    lastHadRead_ = false;
    for (uint32_t i = 0; i < want; i++) {
      uint32_t s = t.sq[i];
      if (s >= table_.slots()) {
        Napi::RangeError::New(env, std::string(D::kLabel) + " slot out of range").ThrowAsJavaScriptException();
        return false;
      }
      if (D::IsRead(t.op[s])) lastHadRead_ = true;
      addr_[i] = 0;
      if (D::IsData(t.op[s])) {
        Napi::Value v = bufs.Get(s);
        if (!v.IsTypedArray()) {
          Napi::TypeError::New(env, std::string(D::kLabel) + " slot has no buffer").ThrowAsJavaScriptException();
          return false;
        }
        Napi::Uint8Array b = v.As<Napi::Uint8Array>();
        if (t.len[s] > b.ByteLength()) {
          Napi::RangeError::New(env, std::string(D::kLabel) + " length exceeds the slot buffer").ThrowAsJavaScriptException();
          return false;
        }
        addr_[i] = reinterpret_cast<uintptr_t>(b.Data());
      } else if (!D::IsSync(t.op[s])) {
        Napi::RangeError::New(env, "unknown " + std::string(D::kLabel) + " opcode").ThrowAsJavaScriptException();
        return false;
      }
    }
    return true;
  }

  // The kernel took `done` more: the poll keeps the process alive while any is in flight.
  void Took(uint32_t done) {
    if (done == 0) return;
    if (inflight_ == 0 && done == 1) {
      // A lone request after another: the time between them judges how the last one waited.
      uint64_t now = uv_hrtime();
      if (cycleStart_ != 0 && cycleDecided_) spin_.Cycle(cycleKind_, cycleSpun_, now - cycleStart_);
      cycleStart_ = now;
      cycleDecided_ = false;
    } else {
      cycleStart_ = 0;
    }
    inflight_ += done;
    pump_.UpdateRef(inflight_);
  }

  // q's completions were rows [start, n): counted off q and the engine.
  template <class Q>
  void Reaped(Q& q, uint32_t start, uint32_t n) {
    uint32_t got = n - start;
    q.inflight -= std::min(got, q.inflight);
    inflight_ -= std::min(got, inflight_);
  }

  // Every queue's completions, up to one row per slot.
  uint32_t Reap() {
    uint32_t n = 0;
    for (auto& q : Self().Queues()) {
      if (n == table_.slots()) break;
      if (q.inflight > 0) n = Self().ReapInto(q, n);
    }
    return n;
  }

  // Closes every kernel queue and the pump. Idempotent.
  void Destroy() {
    if (closed_) return;
    closed_ = true;
    Self().ReleaseQueues();
    pump_.Close();
    inflight_ = 0;
    if (hookAdded_) {
      napi_remove_env_cleanup_hook(env_, CleanupHook, this);
      hookAdded_ = false;
    }
  }

  SlotTable table_;  // as many slots as the queues' sizes add up to: JS never has more in use
  std::vector<uint64_t> addr_;  // each batch row's buffer address, found before the kernel sees any
  CompletionPump pump_;
  uint32_t inflight_ = 0;
  bool closed_ = false;

 private:
  D& Self() { return static_cast<D&>(*this); }

  // grow(size): one more kernel queue of `size`, and as many more slots. Throws an OsError when
  // the kernel refuses it; the engine then goes on as it was.
  Napi::Value Grow(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (Usable(env)) Self().AddQueue(env, info.This().As<Napi::Object>(), info[0].As<Napi::Number>().Uint32Value());
    return env.Undefined();
  }

  // close(): JS drains first and calls it when idle (see D::ReleaseQueues for why).
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Destroy();
    return info.Env().Undefined();
  }

  Napi::Value GetInflight(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), inflight_); }
  Napi::Value GetSpins(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(spins_)); }
  Napi::Value GetSpinTries(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(spinTries_));
  }
  Napi::Value GetCapacity(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), table_.slots()); }
  Napi::Value GetContexts(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(Self().Queues().size()));
  }

  // Twice QEMU's default poll time: most lone 4k writes on this project's VM were back within
  // 32 µs, nearly all within 64.
  static constexpr uint64_t kDefaultSpinNs = 64000;

  // Whether a completion waits in any queue's ring (read in user space).
  bool Ready() {
    for (auto& q : Self().Queues())
      if (q.inflight > 0 && D::Peek(q)) return true;
    return false;
  }

  // Whether the lone request's queue has a ring that can be read in user space: where it has
  // not (an AIO context set up without one), a spin could only ever run out its time.
  bool Peekable() {
    for (auto& q : Self().Queues())
      if (q.inflight > 0 && D::CanPeek(q)) return true;
    return false;
  }

  // The loop is about to sleep with one lone request on the disk: spin on the rings for up to
  // the longest spin if that has been the faster way for this kind of request (SpinChoice).
  // With more in flight there is no spinning: batches keep the disk fed, and the sockets have
  // requests to read meanwhile.
  static void OnPrepare(uv_prepare_t* handle) {
    auto* self = static_cast<EngineBase*>(handle->data);
    if (self->closed_ || self->inflight_ != 1 || self->cycleStart_ == 0) return;
    if (uv_backend_timeout(handle->loop) == 0) return;  // the loop will not sleep anyway
    if (!self->cycleDecided_) {
      // The lone request stays on one queue for the cycle: whether its ring can be read is
      // asked once, with the choice.
      self->cycleKind_ = self->lastHadRead_ ? SpinChoice::kRead : SpinChoice::kOther;
      self->cycleSpun_ = self->Peekable() && self->spin_.Spin(self->cycleKind_);
      self->cycleDecided_ = true;
    }
    if (!self->cycleSpun_) return;
    self->spinTries_++;
    uint64_t t0 = uv_hrtime(), now = t0;
    do {
      if (self->Ready()) {
        self->spins_++;
        self->Deliver();
        return;
      }
      CpuRelax();
      now = uv_hrtime();
    } while (now - t0 < self->spin_.maxNs());
  }

  void Deliver() {
    Napi::Env env(env_);
    Napi::HandleScope scope(env);
    pump_.Deliver(
        env, Wrap::Value(), table_.slots(), [this] { return Reap(); }, [this] { return inflight_; }, [this] { return closed_; });
  }

  static void OnReadable(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<EngineBase*>(handle->data);
    if (self->closed_) return;
    self->Deliver();
  }

  // The environment is going away without close(): the kernel queues go with it.
  static void CleanupHook(void* arg) {
    auto* self = static_cast<EngineBase*>(arg);
    self->hookAdded_ = false;
    self->Destroy();
  }

  napi_env env_ = nullptr;
  bool hookAdded_ = false;
  SpinChoice spin_;
  uint64_t cycleStart_ = 0;  // uv_hrtime() when the lone request in flight was submitted (0: none)
  int cycleKind_ = 0;
  bool cycleSpun_ = false;
  bool cycleDecided_ = false;
  bool lastHadRead_ = false;  // the last batch had a read
  uint64_t spins_ = 0;      // lone requests whose completion a spin found
  uint64_t spinTries_ = 0;  // spins started, found or not
};

}  // namespace aionbd
