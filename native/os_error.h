#pragma once
#include <napi.h>

namespace aionbd {

// Throws an Error shaped like Node's system errors (code, errno, syscall), so JS maps it to a
// typed AionbdError in one place instead of parsing messages.
void ThrowOsError(Napi::Env env, const char* syscall, int err);
Napi::Error MakeOsError(Napi::Env env, const char* syscall, int err);

}  // namespace aionbd
