// A blocking librados/librbd call on the libuv thread pool: connect, open, close, resize,
// diff. `run` touches only plain C++ state captured by value (it may name the step that failed
// in `what`); `done` runs on the main thread whatever the outcome and turns a result >= 0 into
// the JS value. The callback gets (null, value) or (OsError) with `what` as its syscall and
// the call's -errno.
#pragma once
#include <napi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "os_error.h"

namespace aionbd {

class RbdJob : public Napi::AsyncWorker {
 public:
  using Run = std::function<int64_t(std::string& what)>;
  using Done = std::function<Napi::Value(Napi::Env, int64_t rc)>;

  // Queues the job; `keep` (the wrapper whose native state `run` uses) is pinned until the
  // callback has run.
  static void Start(Napi::Function cb, Napi::Object keep, const char* what, Run run, Done done = nullptr) {
    auto* j = new RbdJob(cb, what, std::move(run), std::move(done));
    j->Receiver().Set("keep", keep);
    j->Queue();
  }

 private:
  RbdJob(Napi::Function cb, const char* what, Run run, Done done)
      : Napi::AsyncWorker(cb, "aionbd:rbd"), what_(what), run_(std::move(run)), done_(std::move(done)) {}

  void Execute() override { rc_ = run_(what_); }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Value v = done_ ? done_(env, rc_) : Napi::Number::New(env, static_cast<double>(rc_));
    if (rc_ < 0) {
      Callback().Call({MakeOsError(env, what_.c_str(), static_cast<int>(-rc_)).Value()});
      return;
    }
    Callback().Call({env.Null(), v});
  }

  std::string what_;
  Run run_;
  Done done_;
  int64_t rc_ = 0;
};

}  // namespace aionbd
