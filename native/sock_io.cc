#include "sock_io.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "os_error.h"
#include "uv_poll.h"

namespace aionbd {

namespace {

constexpr uint32_t kMaxIov = IOV_MAX < 1024 ? IOV_MAX : 1024;

// The iovec array of writev: filled and used within one call, so one per thread serves every
// connection (16 KiB each would be a good part of what an idle connection costs).
thread_local struct iovec tIov[kMaxIov];

// The bytes of a Uint8Array (a Buffer is one), or null when `v` is something else.
uint8_t* BytesOf(Napi::Value v, size_t* len) {
  if (!v.IsTypedArray()) return nullptr;
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  if (t.TypedArrayType() != napi_uint8_array) return nullptr;
  Napi::Uint8Array u = t.As<Napi::Uint8Array>();
  *len = u.ByteLength();
  return u.Data();
}

}  // namespace

Napi::Function SockIo::Init(Napi::Env env) {
  return DefineClass(env, "SockIo",
                     {
                         InstanceMethod<&SockIo::Read>("read"),
                         InstanceMethod<&SockIo::Readv>("readv"),
                         InstanceMethod<&SockIo::Writev>("writev"),
                         InstanceMethod<&SockIo::SetQueue>("setQueue"),
                         InstanceMethod<&SockIo::Poll>("poll"),
                         InstanceMethod<&SockIo::Shutdown>("shutdown"),
                         InstanceMethod<&SockIo::Close>("close"),
                     });
}

// new SockIo(fd, qBufs, qOff, qLen, onEvent(events)): fd is the connected stream socket of a
// net.Socket; we work on a dup of it and close only the dup.
SockIo::SockIo(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SockIo>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  if (info.Length() < 5 || !info[0].IsNumber() || !info[4].IsFunction()) {
    Napi::TypeError::New(env, "SockIo(fd, qBufs, qOff, qLen, onEvent)").ThrowAsJavaScriptException();
    return;
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int type = 0;
  socklen_t tlen = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0) {
    ThrowOsError(env, "getsockopt", errno);
    return;
  }
  if (type != SOCK_STREAM) {
    ThrowOsError(env, "getsockopt", ESOCKTNOSUPPORT);
    return;
  }
  fd_ = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (fd_ < 0) {
    ThrowOsError(env, "fcntl", errno);
    return;
  }
  SetQueue(info);
  if (env.IsExceptionPending()) {
    Destroy();
    return;
  }
  onEvent_ = Napi::Persistent(info[4].As<Napi::Function>());
  async_ = new Napi::AsyncContext(env, "aionbd:socket");

  poll_ = OpenPoll(env, fd_, this);
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  hookAdded_ = true;
}

SockIo::~SockIo() { Destroy(); }

// setQueue(qBufs, qOff, qLen) (also the constructor's arguments 1..3): the ring of pieces to
// send. The three grow together; JS calls this again after growing them.
Napi::Value SockIo::SetQueue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t base = info.Length() >= 5 ? 1 : 0;  // constructor: (fd, qBufs, qOff, qLen, cb)
  if (info.Length() < base + 3 || !info[base].IsArray() || !info[base + 1].IsTypedArray() ||
      !info[base + 2].IsTypedArray()) {
    Napi::TypeError::New(env, "setQueue(qBufs, qOff, qLen)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::TypedArray off = info[base + 1].As<Napi::TypedArray>();
  Napi::TypedArray len = info[base + 2].As<Napi::TypedArray>();
  Napi::Array bufs = info[base].As<Napi::Array>();
  if (off.TypedArrayType() != napi_uint32_array || len.TypedArrayType() != napi_uint32_array ||
      off.ElementLength() != len.ElementLength() || bufs.Length() != off.ElementLength() || off.ElementLength() == 0) {
    Napi::RangeError::New(env, "setQueue: qBufs, qOff and qLen must have one same, non-zero length")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  qBufs_ = Napi::Persistent(bufs.As<Napi::Object>());
  qOffRef_ = Napi::Persistent(off.As<Napi::Object>());
  qLenRef_ = Napi::Persistent(len.As<Napi::Object>());
  qOff_ = off.As<Napi::Uint32Array>().Data();
  qLen_ = len.As<Napi::Uint32Array>().Data();
  qCap_ = static_cast<uint32_t>(off.ElementLength());
  return env.Undefined();
}

// read(buf, offset, length): one recv into buf[offset..offset+length). Returns the bytes read,
// 0 at end of stream, or -errno (-EAGAIN: nothing to read now).
Napi::Value SockIo::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return Napi::Number::New(env, -EBADF);
  size_t blen = 0;
  uint8_t* p = info.Length() >= 3 ? BytesOf(info[0], &blen) : nullptr;
  if (p == nullptr || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "read(buf, offset, length)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double off = info[1].As<Napi::Number>().DoubleValue();
  double len = info[2].As<Napi::Number>().DoubleValue();
  // A JS bug must throw here, not let recv write past the buffer.
  if (!(off >= 0) || !(len > 0) || off + len > static_cast<double>(blen)) {
    Napi::RangeError::New(env, "read: range outside the buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  ssize_t n;
  do {
    n = recv(fd_, p + static_cast<size_t>(off), static_cast<size_t>(len), MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  return Napi::Number::New(env, n < 0 ? -errno : static_cast<double>(n));
}

// readv(a, aOff, aLen, b, bOff, bLen): one recvmsg that fills a[aOff..aOff+aLen) first, then
// b[bOff..bOff+bLen): the rest of a WRITE payload straight into its buffer, and whatever follows
// it into the receive buffer, in one system call. Returns the total read, 0 at end of stream, or
// -errno.
Napi::Value SockIo::Readv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return Napi::Number::New(env, -EBADF);
  struct iovec iov[2];
  for (int k = 0; k < 2; k++) {
    size_t at = static_cast<size_t>(k) * 3;
    size_t blen = 0;
    uint8_t* p = info.Length() >= 6 ? BytesOf(info[at], &blen) : nullptr;
    if (p == nullptr || !info[at + 1].IsNumber() || !info[at + 2].IsNumber()) {
      Napi::TypeError::New(env, "readv(a, aOff, aLen, b, bOff, bLen)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    double off = info[at + 1].As<Napi::Number>().DoubleValue();
    double len = info[at + 2].As<Napi::Number>().DoubleValue();
    // A JS bug must throw here, not let recv write past a buffer.
    if (!(off >= 0) || !(len > 0) || off + len > static_cast<double>(blen)) {
      Napi::RangeError::New(env, "readv: range outside the buffer").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    iov[k].iov_base = p + static_cast<size_t>(off);
    iov[k].iov_len = static_cast<size_t>(len);
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  ssize_t n;
  do {
    n = recvmsg(fd_, &msg, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  return Napi::Number::New(env, n < 0 ? -errno : static_cast<double>(n));
}

// writev(head, count): sends queue entries head, head+1, ... (modulo the ring's size), at most
// count of them, in one sendmsg. Returns the bytes sent (possibly fewer than queued) or -errno.
Napi::Value SockIo::Writev(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return Napi::Number::New(env, -EBADF);
  uint32_t head = info[0].As<Napi::Number>().Uint32Value();
  uint32_t count = std::min(info[1].As<Napi::Number>().Uint32Value(), kMaxIov);
  if (head >= qCap_ || count > qCap_) {
    Napi::RangeError::New(env, "writev: outside the queue").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object bufs = qBufs_.Value();
  uint32_t n = 0;
  for (uint32_t k = 0; k < count; k++) {
    uint32_t i = head + k;
    if (i >= qCap_) i -= qCap_;
    size_t off = qOff_[i], len = qLen_[i];
    if (len == 0) continue;
    size_t blen = 0;
    uint8_t* base = BytesOf(bufs.Get(i), &blen);
    if (base == nullptr || off + len > blen) {
      Napi::RangeError::New(env, "writev: a queued piece lies outside its buffer").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    tIov[n].iov_base = base + off;
    tIov[n].iov_len = len;
    n++;
  }
  if (n == 0) return Napi::Number::New(env, 0);
  msghdr msg{};
  msg.msg_iov = tIov;
  msg.msg_iovlen = n;
  ssize_t w;
  do {
    w = sendmsg(fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (w < 0 && errno == EINTR);
  return Napi::Number::New(env, w < 0 ? -errno : static_cast<double>(w));
}

// poll(mask): what to be told about (1 readable, 2 writable; 0 nothing). Cheap when unchanged.
Napi::Value SockIo::Poll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return env.Undefined();
  int mask = info[0].As<Napi::Number>().Int32Value();
  int ev = ((mask & kReadable) != 0 ? UV_READABLE : 0) | ((mask & kWritable) != 0 ? UV_WRITABLE : 0);
  if (ev == events_) return env.Undefined();
  events_ = ev;
  if (ev == 0)
    uv_poll_stop(poll_);
  else
    uv_poll_start(poll_, ev, OnPoll);
  return env.Undefined();
}

void SockIo::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<SockIo*>(handle->data);
  if (self->closed_) return;
  int ev;
  if (status < 0) {
    // libuv stopped the handle; JS reads to learn the error, and polls again if it wants.
    self->events_ = 0;
    ev = kReadable | kWritable | kError;
  } else {
    ev = ((events & UV_READABLE) != 0 ? kReadable : 0) | ((events & UV_WRITABLE) != 0 ? kWritable : 0);
  }
  Napi::Env env(self->env_);
  Napi::HandleScope scope(env);
  self->onEvent_.MakeCallback(self->Value(), {Napi::Number::New(env, ev)}, *self->async_);
  if (env.IsExceptionPending()) napi_fatal_exception(env, env.GetAndClearPendingException().Value());
}

// shutdown(): no more bytes from us (the peer reads end of stream). Returns 0 or -errno.
Napi::Value SockIo::Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return Napi::Number::New(env, -EBADF);
  return Napi::Number::New(env, shutdown(fd_, SHUT_WR) == 0 ? 0 : -errno);
}

// close(): stops polling and closes our dup of the fd. Idempotent.
Napi::Value SockIo::Close(const Napi::CallbackInfo& info) {
  Destroy();
  return info.Env().Undefined();
}

void SockIo::Destroy() {
  if (closed_) return;
  closed_ = true;
  ClosePoll(poll_);
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  if (hookAdded_) {
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
    hookAdded_ = false;
  }
  if (async_ != nullptr) {
    delete async_;
    async_ = nullptr;
  }
  // The callback closes over the JS transport that holds this object's wrapper: a strong
  // reference kept past close() is a cycle through a GC root, and every connection's transport
  // and request slots would live for ever.
  if (!onEvent_.IsEmpty()) onEvent_.Reset();
}

void SockIo::CleanupHook(void* arg) {
  auto* self = static_cast<SockIo*>(arg);
  self->hookAdded_ = false;
  self->Destroy();
}
// SO_PEERCRED of a connected unix socket: who is at the other end, as the kernel recorded it at
// connect time. A client judges the server by this, not by who owns the socket's path.
Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "peerCred(fd)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (getsockopt(info[0].As<Napi::Number>().Int32Value(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    ThrowOsError(env, "getsockopt", errno);
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", static_cast<double>(cred.pid));
  o.Set("uid", static_cast<double>(cred.uid));
  o.Set("gid", static_cast<double>(cred.gid));
  return o;
}

}  // namespace aionbd
