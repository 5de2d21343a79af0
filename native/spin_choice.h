// Whether the event loop looks at the completion rings in user space before it sleeps, while a
// single request waits on the disk. Sleeping in epoll and being woken by the eventfd costs a
// context switch (in a VM, an exit on each side); spinning on the ring can answer sooner. But
// it can also cost more than it saves: on this project's 2-core VM, spinning while a 4k read
// was on the disk made QD1 reads ~25% slower and writes ~10% faster (docs/performance.notes.md),
// although the spin itself found reads sooner. So the choice is measured where the client feels
// it: for each kind of request (reads, everything else) the engine keeps a running mean of the
// time from one lone request to the next, with and without the spin, tries the other way one
// time in 16, and otherwise takes the faster.
#pragma once
#include <cstdint>

namespace aionbd {

// What a spinning loop does between two looks: lets the other hyperthread (or the hypervisor) run.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

class SpinChoice {
 public:
  static constexpr int kRead = 0, kOther = 1;

  // maxNs: the longest spin; 0 never spins.
  explicit SpinChoice(uint64_t maxNs = 0) : max_(maxNs) {}

  uint64_t maxNs() const { return max_; }

  // Whether the wait for a lone request of `kind` spins.
  bool Spin(int kind) {
    if (max_ == 0) return false;
    Arm* a = arms_[kind];
    uint32_t n = ++turns_[kind];
    if (a[0].samples < kWarmup || a[1].samples < kWarmup) return (n & 1) != 0;
    bool better = a[1].mean < a[0].mean;
    return n % kExplore == 0 ? !better : better;
  }

  // The next request came `ns` after one of `kind` that waited spinning or not.
  void Cycle(int kind, bool spun, uint64_t ns) {
    // A client that paused, or a stall of the disk, says nothing about spinning.
    if (ns > kLongestCycleNs) return;
    Arm& a = arms_[kind][spun ? 1 : 0];
    // A mean over about the last 32 cycles: the disk's speed drifts.
    a.mean = a.samples == 0 ? ns : a.mean - a.mean / 32 + ns / 32;
    if (a.samples < kWarmup) a.samples++;
  }

 private:
  static constexpr uint32_t kWarmup = 16, kExplore = 16;
  static constexpr uint64_t kLongestCycleNs = 1000000;
  struct Arm {
    uint64_t mean = 0;
    uint32_t samples = 0;
  };
  uint64_t max_;
  Arm arms_[2][2];
  uint32_t turns_[2] = {};
};

}  // namespace aionbd
