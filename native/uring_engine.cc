#include "uring_engine.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "os_error.h"

namespace aionbd {

namespace {

int UringSetup(uint32_t entries, io_uring_params* p) { return static_cast<int>(syscall(__NR_io_uring_setup, entries, p)); }
long UringEnter(int fd, uint32_t toSubmit) { return syscall(__NR_io_uring_enter, fd, toSubmit, 0, 0, nullptr, 0); }
long UringRegister(int fd, unsigned op, void* arg, unsigned n) { return syscall(__NR_io_uring_register, fd, op, arg, n); }

void* MapRegion(int fd, size_t len, off_t what) {
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, what);
  return p == MAP_FAILED ? nullptr : p;
}

// A transient refusal of io_uring_enter: the next ring, or a later submit, may succeed.
bool Transient(int err) { return err == EAGAIN || err == EBUSY || err == EINTR; }

}  // namespace

Napi::Function UringEngine::Init(Napi::Env env) { return DefineEngine(env); }

// new UringEngine(entries, buffers: (Uint8Array | null)[], onComplete(n)): the first ring.
UringEngine::UringEngine(const Napi::CallbackInfo& info) : EngineBase<UringEngine>(info) { Open(info); }

UringEngine::~UringEngine() { Destroy(); }

// io_uring_setup(entries), its rings mapped, the eventfd registered, and room for as many more
// slots. Throws an OsError (and returns false) with nothing changed when a step fails; its
// syscall tells JS which (io_uring_setup: io_uring itself is missing or refused).
bool UringEngine::AddQueue(Napi::Env env, Napi::Object self, uint32_t entries) {
  if (entries == 0 || entries > kMaxRingEntries) {
    Napi::RangeError::New(env, "io_uring entries must be 1.." + std::to_string(kMaxRingEntries)).ThrowAsJavaScriptException();
    return false;
  }
  io_uring_params p;
  std::memset(&p, 0, sizeof p);
  // A bad SQE then fails alone (its CQE says why) instead of ending the batch's submission.
  p.flags = IORING_SETUP_SUBMIT_ALL;
  int fd = UringSetup(entries, &p);
  if (fd < 0 && errno == EINVAL) {  // kernels before 5.18 know no SUBMIT_ALL
    std::memset(&p, 0, sizeof p);
    fd = UringSetup(entries, &p);
  }
  if (fd < 0) {
    ThrowOsError(env, "io_uring_setup", errno);
    return false;
  }
  Ring r;
  r.fd = fd;
  r.size = entries;
  r.sqMapLen = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r.cqMapLen = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single) r.sqMapLen = r.cqMapLen = std::max(r.sqMapLen, r.cqMapLen);
  r.sqesLen = p.sq_entries * sizeof(io_uring_sqe);
  const char* failed = nullptr;
  int err = 0;
  int efd = pump_.efd();
  r.sqMap = MapRegion(fd, r.sqMapLen, IORING_OFF_SQ_RING);
  if (r.sqMap != nullptr) r.cqMap = single ? r.sqMap : MapRegion(fd, r.cqMapLen, IORING_OFF_CQ_RING);
  if (r.cqMap != nullptr) r.sqes = static_cast<io_uring_sqe*>(MapRegion(fd, r.sqesLen, IORING_OFF_SQES));
  if (r.sqes == nullptr) {
    failed = "mmap";
    err = errno;
  } else if (UringRegister(fd, IORING_REGISTER_EVENTFD, &efd, 1) < 0) {
    failed = "io_uring_register";
    err = errno;
  }
  if (failed == nullptr && !ResizeTable(env, self, table_.slots() + entries)) failed = "";
  if (failed != nullptr) {
    if (r.sqes != nullptr) munmap(r.sqes, r.sqesLen);
    if (r.cqMap != nullptr && r.cqMap != r.sqMap) munmap(r.cqMap, r.cqMapLen);
    if (r.sqMap != nullptr) munmap(r.sqMap, r.sqMapLen);
    close(fd);
    if (*failed != '\0') ThrowOsError(env, failed, err);
    return false;
  }
  auto* sq = static_cast<uint8_t*>(r.sqMap);
  auto* cq = static_cast<uint8_t*>(r.cqMap);
  r.sqHead = reinterpret_cast<unsigned*>(sq + p.sq_off.head);
  r.sqTail = reinterpret_cast<unsigned*>(sq + p.sq_off.tail);
  r.sqMask = *reinterpret_cast<unsigned*>(sq + p.sq_off.ring_mask);
  r.sqArray = reinterpret_cast<unsigned*>(sq + p.sq_off.array);
  r.cqHead = reinterpret_cast<unsigned*>(cq + p.cq_off.head);
  r.cqTail = reinterpret_cast<unsigned*>(cq + p.cq_off.tail);
  r.cqMask = *reinterpret_cast<unsigned*>(cq + p.cq_off.ring_mask);
  r.cqes = reinterpret_cast<io_uring_cqe*>(cq + p.cq_off.cqes);
  rings_.push_back(r);
  return true;
}

// Writes the batch rows [from, from + k) as SQEs of r, and one io_uring_enter submits them.
// Sets *taken to how many the kernel consumed; those it left are taken back off the ring (the
// kernel only reads the SQ inside io_uring_enter), so the ring's head and tail agree again.
// Returns the errno of a failed io_uring_enter, else 0.
int32_t UringEngine::SubmitTo(Ring& r, uint32_t from, uint32_t k, uint32_t* taken) {
  const SlotColumns& t = table_.cols();
  unsigned tail = *r.sqTail;
  for (uint32_t j = 0; j < k; j++) {
    uint32_t s = t.sq[from + j];
    unsigned idx = (tail + j) & r.sqMask;
    io_uring_sqe* e = &r.sqes[idx];
    std::memset(e, 0, sizeof *e);
    e->opcode = static_cast<uint8_t>(t.op[s]);
    e->fd = static_cast<int32_t>(t.fd[s]);
    e->user_data = s;
    // rw_flags (RWF_DSYNC for FUA) and fsync_flags (IORING_FSYNC_DATASYNC) share this word.
    e->rw_flags = t.rwFlags[s];
    if (t.op[s] != IORING_OP_FSYNC) {
      e->addr = addr_[from + j];
      e->len = t.len[s];
      e->off = static_cast<uint64_t>(t.offset[s]);
    }
    r.sqArray[idx] = idx;
  }
  __atomic_store_n(r.sqTail, tail + k, __ATOMIC_RELEASE);
  long rc = UringEnter(r.fd, k);
  int err = rc < 0 ? errno : 0;
  unsigned head = __atomic_load_n(r.sqHead, __ATOMIC_ACQUIRE);
  *taken = head - tail;
  if (*taken < k) __atomic_store_n(r.sqTail, head, __ATOMIC_RELEASE);
  return err;
}

// submit(n): submits the slots sq[0..n), filling the rings in order, one io_uring_enter per
// ring used (one for a batch that fits the first ring with room). Returns how many the kernel
// took (0 when every ring is full or busy: JS keeps the rest queued), or -errno when the kernel
// refused the batch outright (JS fails the first slot alone and submits the rest again). An
// SQE the kernel takes but cannot run completes with -errno like any other I/O.
Napi::Value UringEngine::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!Usable(env)) return env.Undefined();
  uint32_t want = Wanted(info);
  if (!CheckBatch(env, want)) return env.Undefined();
  uint32_t done = 0;
  for (Ring& r : rings_) {
    if (done == want) break;
    uint32_t room = r.size - r.inflight;
    if (room == 0) continue;
    uint32_t k = std::min(room, want - done);
    uint32_t taken = 0;
    int err = SubmitTo(r, done, k, &taken);
    r.inflight += taken;
    done += taken;
    if (taken == k) continue;
    if (taken == 0 && Transient(err)) continue;  // this ring is busy: the next may take them
    if (taken == 0 && done == 0 && err != 0) return Napi::Number::New(env, -err);
    break;  // the next submit() starts with the first one left, and reports it
  }
  Took(done);
  return Napi::Number::New(env, done);
}

// Moves r's completions into cqSlot/cqRes from row n on, as many as fit; returns the new row
// count. The CQ holds twice the ring's size, so it never overflows.
uint32_t UringEngine::ReapInto(Ring& r, uint32_t n) {
  const SlotColumns& t = table_.cols();
  uint32_t slots = table_.slots();
  uint32_t start = n;
  unsigned head = *r.cqHead;
  unsigned tail = __atomic_load_n(r.cqTail, __ATOMIC_ACQUIRE);
  while (head != tail && n < slots) {
    const io_uring_cqe& c = r.cqes[head & r.cqMask];
    t.cqSlot[n] = static_cast<uint32_t>(c.user_data);
    t.cqRes[n] = static_cast<double>(c.res);
    n++;
    head++;
  }
  __atomic_store_n(r.cqHead, head, __ATOMIC_RELEASE);
  Reaped(r, start, n);
  return n;
}

// Unmaps and closes every ring. JS drains first and calls close() when idle: a ring closed with
// I/O in flight would cancel it in the background. Also run when the environment goes away
// without close(): the rings' fds and mappings go with it.
void UringEngine::ReleaseQueues() {
  for (Ring& r : rings_) {
    munmap(r.sqes, r.sqesLen);
    if (r.cqMap != r.sqMap) munmap(r.cqMap, r.cqMapLen);
    munmap(r.sqMap, r.sqMapLen);
    close(r.fd);
  }
  rings_.clear();
}

// Completions are always read from the mapped CQ ring (AioEngine's accessor, for one JS engine).
Napi::Value UringEngine::GetUserRing(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !rings_.empty());
}

}  // namespace aionbd
