#include <napi.h>
#include <sys/resource.h>

#include <cerrno>

#include "os_error.h"

namespace aionbd {

namespace {

double AsNumber(rlim_t v) { return v == RLIM_INFINITY ? -1.0 : static_cast<double>(v); }

}  // namespace

// fileLimit(raise): RLIMIT_NOFILE as { soft, hard, before, error } (-1 for unlimited). With
// raise, the soft limit is first set to the hard one, as servers that hold many sockets do;
// Node has no API for it. `before` is the soft limit found, `error` the errno of a refused
// raise (0 when none was needed or it worked): the caller carries on with the limit it has.
Napi::Value FileLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool raise = info.Length() > 0 && info[0].ToBoolean().Value();
  struct rlimit r {};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) {
    ThrowOsError(env, "getrlimit", errno);
    return env.Undefined();
  }
  rlim_t before = r.rlim_cur;
  int err = 0;
  if (raise && r.rlim_cur != r.rlim_max) {
    struct rlimit want = r;
    want.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0)
      r = want;
    else
      err = errno;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("soft", AsNumber(r.rlim_cur));
  o.Set("hard", AsNumber(r.rlim_max));
  o.Set("before", AsNumber(before));
  o.Set("error", err);
  return o;
}

}  // namespace aionbd
