#include "os_error.h"

#include <cstring>
#include <string>

namespace aionbd {

namespace {
const char* ErrnoName(int err) {
  switch (err) {
    case EAGAIN: return "EAGAIN";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOSYS: return "ENOSYS";
    case EBADF: return "EBADF";
    case ENOTTY: return "ENOTTY";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EIO: return "EIO";
    case ENOSPC: return "ENOSPC";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EXDEV: return "EXDEV";
    case ELOOP: return "ELOOP";
    case ENXIO: return "ENXIO";
    case EROFS: return "EROFS";
    case EBUSY: return "EBUSY";
    case ETXTBSY: return "ETXTBSY";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EMFILE: return "EMFILE";
    default: return "EUNKNOWN";
  }
}
}  // namespace

Napi::Error MakeOsError(Napi::Env env, const char* syscall, int err) {
  std::string msg = std::string(syscall) + ": " + std::strerror(err);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

void ThrowOsError(Napi::Env env, const char* syscall, int err) {
  MakeOsError(env, syscall, err).ThrowAsJavaScriptException();
}

}  // namespace aionbd
