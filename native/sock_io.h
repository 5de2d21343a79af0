#pragma once
#include <napi.h>
#include <sys/uio.h>
#include <uv.h>

#include <cstdint>

namespace aionbd {

// Bits of what poll(mask) asks for and onEvent(events) reports; exported as constants.sockEvent.
enum SockEvent : int { kReadable = 1, kWritable = 2, kError = 4 };

// Socket I/O for one NBD connection in transmission phase, without Node's stream machinery:
// reads land in buffers JS chooses (a reused receive buffer, or straight into a WRITE's pooled
// payload buffer), and replies leave in one writev per batch from a queue JS fills. The class
// is a thin layer over recv/sendmsg/uv_poll: framing, ordering, backpressure and buffer
// lifetimes stay in JS (src/nbd/native_transport.ts). It works on its own dup of the socket's fd,
// so the net.Socket that accepted the connection keeps its fd and its handle untouched: JS
// closes that net.Socket once it is done with it when nobody else holds it, and the dup is then
// the connection's only fd.
class SockIo : public Napi::ObjectWrap<SockIo> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit SockIo(const Napi::CallbackInfo& info);
  ~SockIo() override;

 private:
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Readv(const Napi::CallbackInfo& info);
  Napi::Value Writev(const Napi::CallbackInfo& info);
  Napi::Value SetQueue(const Napi::CallbackInfo& info);
  Napi::Value Poll(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void CleanupHook(void* arg);
  void Destroy();

  int fd_ = -1;
  int events_ = 0;  // what uv_poll watches now
  bool closed_ = false;
  bool hookAdded_ = false;
  uv_poll_t* poll_ = nullptr;
  napi_env env_ = nullptr;

  // The write queue JS fills: a ring of (buffer, offset, length), referenced here so that the
  // typed arrays' memory stays put while we read it.
  Napi::ObjectReference qBufs_;
  Napi::ObjectReference qOffRef_;
  Napi::ObjectReference qLenRef_;
  uint32_t* qOff_ = nullptr;
  uint32_t* qLen_ = nullptr;
  uint32_t qCap_ = 0;

  Napi::FunctionReference onEvent_;
  Napi::AsyncContext* async_ = nullptr;
};

}  // namespace aionbd
