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

Napi::Function AioEngine::Init(Napi::Env env) { return DefineEngine(env); }

// new AioEngine(events, buffers: (Uint8Array | null)[], onComplete(n)): the first context.
AioEngine::AioEngine(const Napi::CallbackInfo& info) : EngineBase<AioEngine>(info) {
  noUserRing_ = std::getenv("AIONBD_NO_USER_RING") != nullptr;
  Open(info);
}

AioEngine::~AioEngine() { Destroy(); }

// io_setup(events) and room for as many more slots. Throws (and returns false) with nothing
// changed when either fails; the OsError's syscall tells JS which.
bool AioEngine::AddQueue(Napi::Env env, Napi::Object self, uint32_t events) {
  if (events == 0 || events > kMaxContextEvents) {
    Napi::RangeError::New(env, "AIO context events must be 1.." + std::to_string(kMaxContextEvents)).ThrowAsJavaScriptException();
    return false;
  }
  aio_context_t id = 0;
  if (IoSetup(events, &id) < 0) {
    ThrowOsError(env, "io_setup", errno);
    return false;
  }
  uint32_t slots = table_.slots() + events;
  if (!ResizeTable(env, self, slots)) {
    IoDestroy(id);
    return false;
  }
  iocbs_.resize(slots);
  batch_.resize(slots);
  events_.resize(slots);
  auto* ring = reinterpret_cast<AioRing*>(id);
  bool user = !noUserRing_ && ring->magic == kAioRingMagic && ring->incompat_features == 0;
  ctxs_.push_back(Context{id, events, 0, user});
  return true;
}

// submit(n): submits the slots sq[0..n), filling the contexts in order, one io_submit per
// context used (one for a batch that fits the first context with room). Returns how many the
// kernel took (0 when every ring is full: JS keeps the rest queued), or -errno when the kernel
// refused the first iocb (JS fails that slot alone and submits the rest again).
Napi::Value AioEngine::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable(env)) return env.Undefined();
  uint32_t want = Wanted(info);
  if (!CheckBatch(env, want)) return env.Undefined();
  const SlotColumns& t = table_.cols();
  for (uint32_t i = 0; i < want; i++) {
    uint32_t s = t.sq[i];
    iocb& cb = iocbs_[s];
    std::memset(&cb, 0, sizeof cb);
    cb.aio_data = s;
    cb.aio_lio_opcode = static_cast<uint16_t>(t.op[s]);
    cb.aio_fildes = t.fd[s];
    cb.aio_rw_flags = static_cast<int>(t.rwFlags[s]);
    cb.aio_flags = IOCB_FLAG_RESFD;
    cb.aio_resfd = static_cast<uint32_t>(pump_.efd());
    if (IsData(t.op[s])) {
      cb.aio_buf = addr_[i];
      cb.aio_nbytes = t.len[s];
      cb.aio_offset = static_cast<int64_t>(t.offset[s]);
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
  Took(done);
  return Napi::Number::New(env, done);
}

// Whether c's ring holds completions, read in user space (false when it cannot be read).
bool AioEngine::Peek(const Context& c) {
  if (!c.userRing) return false;
  auto* ring = reinterpret_cast<AioRing*>(c.id);
  return ring->head != __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
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
  Reaped(c, start, n);
  return n;
}

// The kernel's io_destroy waits for in-flight I/O, so buffers are never written after close()
// returns; JS drains first and calls close() when idle. Also run when the process exits without
// close(), so that aio-nr drops.
void AioEngine::ReleaseQueues() {
  for (Context& c : ctxs_) IoDestroy(c.id);
  ctxs_.clear();
}

// True when every context's ring is read in user space.
Napi::Value AioEngine::GetUserRing(const Napi::CallbackInfo& info) {
  bool all = !ctxs_.empty();
  for (const Context& c : ctxs_) all = all && c.userRing;
  return Napi::Boolean::New(info.Env(), all);
}

}  // namespace aionbd
