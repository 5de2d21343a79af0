#include "nbd_attach.h"

#include <fcntl.h>
#include <linux/nbd-netlink.h>
#include <linux/nbd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "nbd_netlink.h"
#include "os_error.h"
#include "uv_poll.h"

namespace aionbd {

namespace {

// One blocking call on the thread pool, settled as a promise: rejected with an OsError
// (code, errno, syscall) so JS maps the errno to a message in one place.
class Job : public Napi::AsyncWorker {
 public:
  using Run = std::function<int()>;
  using Done = std::function<Napi::Value(Napi::Env)>;
  Job(Napi::Env env, const char* what, Run run, Done done)
      : Napi::AsyncWorker(env, "aionbd:nbd"),
        deferred_(Napi::Promise::Deferred::New(env)),
        what_(what),
        run_(std::move(run)),
        done_(std::move(done)) {}
  void Execute() override { err_ = run_(); }
  void OnOK() override {
    if (err_ != 0)
      deferred_.Reject(MakeOsError(Env(), what_, err_).Value());
    else
      deferred_.Resolve(done_(Env()));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }
  Napi::Promise Promise() const { return deferred_.Promise(); }

 private:
  Napi::Promise::Deferred deferred_;
  const char* what_;
  Run run_;
  Done done_;
  int err_ = 0;
};

Napi::Value Queue(Napi::Env env, const char* what, Job::Run run, Job::Done done) {
  auto* job = new Job(env, what, std::move(run), std::move(done));
  Napi::Promise p = job->Promise();
  job->Queue();
  return p;
}

double NumberOr(Napi::Object o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

bool FdsOf(Napi::Value v, std::vector<int>* out) {
  if (!v.IsArray()) return false;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) return false;
    out->push_back(x.As<Napi::Number>().Int32Value());
  }
  return !out->empty();
}

Napi::Value TypeErr(Napi::Env env, const char* usage) {
  Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
  return env.Undefined();
}

// socketpair(): [a, b], close-on-exec. One end goes to the kernel, the other is served by us.
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    ThrowOsError(env, "socketpair", errno);
    return env.Undefined();
  }
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, sv[0]);
  a.Set(1u, sv[1]);
  return a;
}

// family(): { id, mcastGroup }; rejects with ENOENT when the kernel has no nbd family (no
// driver, or a driver too old for netlink). Asking may load the module.
Napi::Value Family(const Napi::CallbackInfo& info) {
  auto f = std::make_shared<nbdnl::Family>();
  return Queue(
      info.Env(), "netlink CTRL_CMD_GETFAMILY nbd", [f] { return nbdnl::ResolveFamily(f.get()); },
      [f](Napi::Env env) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("id", f->id);
        o.Set("mcastGroup", f->mcastGroup);
        return o;
      });
}

// connect({ index?, sizeBytes, blockSize, serverFlags, clientFlags?, timeout?, deadConnTimeout?,
// backendId?, fds }): the device index the kernel used.
Napi::Value Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) return TypeErr(env, "connect(params)");
  Napi::Object o = info[0].As<Napi::Object>();
  nbdnl::ConnectParams p;
  p.index = static_cast<int64_t>(NumberOr(o, "index", -1));
  p.sizeBytes = static_cast<uint64_t>(NumberOr(o, "sizeBytes", 0));
  p.blockSize = static_cast<uint64_t>(NumberOr(o, "blockSize", 0));
  p.serverFlags = static_cast<uint64_t>(NumberOr(o, "serverFlags", 0));
  p.clientFlags = static_cast<uint64_t>(NumberOr(o, "clientFlags", 0));
  p.timeout = static_cast<int64_t>(NumberOr(o, "timeout", -1));
  p.deadConnTimeout = static_cast<int64_t>(NumberOr(o, "deadConnTimeout", -1));
  Napi::Value id = o.Get("backendId");
  if (id.IsString()) p.backendId = id.As<Napi::String>().Utf8Value();
  if (!FdsOf(o.Get("fds"), &p.fds)) return TypeErr(env, "connect: fds must be a non-empty array of numbers");
  auto index = std::make_shared<uint32_t>(0);
  return Queue(
      env, "netlink NBD_CMD_CONNECT", [p, index] { return nbdnl::Connect(p, index.get()); },
      [index](Napi::Env env) { return Napi::Number::New(env, *index); });
}

// disconnect(index)
Napi::Value Disconnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return TypeErr(env, "disconnect(index)");
  uint32_t index = info[0].As<Napi::Number>().Uint32Value();
  return Queue(
      env, "netlink NBD_CMD_DISCONNECT", [index] { return nbdnl::Disconnect(index); },
      [](Napi::Env env) { return env.Undefined(); });
}

// reconfigure(index, fds, backendId)
Napi::Value Reconfigure(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<int> fds;
  if (info.Length() < 3 || !info[0].IsNumber() || !FdsOf(info[1], &fds) || !info[2].IsString()) {
    return TypeErr(env, "reconfigure(index, fds, backendId)");
  }
  uint32_t index = info[0].As<Napi::Number>().Uint32Value();
  std::string id = info[2].As<Napi::String>().Utf8Value();
  return Queue(
      env, "netlink NBD_CMD_RECONFIGURE", [index, fds, id] { return nbdnl::Reconfigure(index, fds, id); },
      [](Napi::Env env) { return env.Undefined(); });
}

// resize(index, sizeBytes, backendId): NBD_CMD_RECONFIGURE with NBD_ATTR_SIZE_BYTES.
Napi::Value Resize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsString()) {
    return TypeErr(env, "resize(index, sizeBytes, backendId)");
  }
  uint32_t index = info[0].As<Napi::Number>().Uint32Value();
  auto size = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
  std::string id = info[2].As<Napi::String>().Utf8Value();
  return Queue(
      env, "netlink NBD_CMD_RECONFIGURE", [index, size, id] { return nbdnl::Resize(index, size, id); },
      [](Napi::Env env) { return env.Undefined(); });
}

// status(index?): [{ index, connected }]
Napi::Value Status(const Napi::CallbackInfo& info) {
  int64_t index = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int64Value() : -1;
  auto list = std::make_shared<std::vector<nbdnl::DeviceStatus>>();
  return Queue(
      info.Env(), "netlink NBD_CMD_STATUS", [index, list] { return nbdnl::Status(index, list.get()); },
      [list](Napi::Env env) {
        Napi::Array a = Napi::Array::New(env, list->size());
        for (uint32_t i = 0; i < list->size(); i++) {
          Napi::Object o = Napi::Object::New(env);
          o.Set("index", (*list)[i].index);
          o.Set("connected", (*list)[i].connected);
          a.Set(i, o);
        }
        return a;
      });
}

// ---- LINK_DEAD listener ---------------------------------------------------------------------

// new Events(familyId, group, onEvent(cmd, index)): multicast messages of the nbd family, read
// on the main loop. cmd kNbdEventsLost means events were lost (the caller looks at every device
// again).
class Events : public Napi::ObjectWrap<Events> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Events", {InstanceMethod<&Events::Close>("close")});
  }

  explicit Events(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Events>(info) {
    Napi::Env env = info.Env();
    env_ = env;
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsFunction()) {
      TypeErr(env, "Events(familyId, group, onEvent)");
      return;
    }
    family_ = static_cast<uint16_t>(info[0].As<Napi::Number>().Uint32Value());
    if (int err = nbdnl::OpenEventSocket(info[1].As<Napi::Number>().Uint32Value(), &fd_)) {
      ThrowOsError(env, "netlink NETLINK_ADD_MEMBERSHIP", err);
      return;
    }
    onEvent_ = Napi::Persistent(info[2].As<Napi::Function>());
    async_ = std::make_unique<Napi::AsyncContext>(env, "aionbd:nbd-events");
    poll_ = OpenPoll(env, fd_, this);
    uv_poll_start(poll_, UV_READABLE, OnReadable);
    // Listening alone must not keep a process alive: the attached devices' sockets do that.
    uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    napi_add_env_cleanup_hook(env, CleanupHook, this);
    hooked_ = true;
  }

  ~Events() override { Destroy(); }

 private:
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Destroy();
    return info.Env().Undefined();
  }

  static void OnReadable(uv_poll_t* handle, int, int) {
    auto* self = static_cast<Events*>(handle->data);
    if (self->fd_ < 0) return;
    std::vector<std::pair<uint8_t, uint32_t>> got;
    int err = nbdnl::ReadEvents(self->fd_, self->family_, [&got](uint8_t cmd, uint32_t index) { got.emplace_back(cmd, index); });
    if (err == ENOBUFS) got.emplace_back(kNbdEventsLost, nbdnl::kNoIndex);
    Napi::Env env(self->env_);
    Napi::HandleScope scope(env);
    for (auto& [cmd, index] : got) {
      if (self->fd_ < 0) return;  // closed by an earlier callback
      self->onEvent_.MakeCallback(self->Value(), {Napi::Number::New(env, cmd), Napi::Number::New(env, index)}, *self->async_);
      if (env.IsExceptionPending()) {
        napi_fatal_exception(env, env.GetAndClearPendingException().Value());
        return;
      }
    }
  }

  static void CleanupHook(void* arg) {
    auto* self = static_cast<Events*>(arg);
    self->hooked_ = false;
    self->Destroy();
  }

  void Destroy() {
    ClosePoll(poll_);
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
    if (hooked_) {
      napi_remove_env_cleanup_hook(env_, CleanupHook, this);
      hooked_ = false;
    }
    // As for the AIO engine and socket I/O: no strong reference back into JS after close().
    if (!onEvent_.IsEmpty()) onEvent_.Reset();
  }

  napi_env env_ = nullptr;
  uint16_t family_ = 0;
  int fd_ = -1;
  bool hooked_ = false;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference onEvent_;
  std::unique_ptr<Napi::AsyncContext> async_;
};

// ---- ioctl fallback ---------------------------------------------------------------------------

struct IoctlParams {
  std::string path;
  uint64_t sizeBytes = 0;
  uint64_t blockSize = 0;
  uint64_t flags = 0;
  uint64_t timeout = 0;
  std::vector<int> fds;
};

int Ioctl(int fd, unsigned long req, unsigned long arg) {
  int rc;
  do rc = ioctl(fd, req, arg);
  while (rc < 0 && errno == EINTR);
  return rc < 0 ? errno : 0;
}

// Everything on one thread: the driver wants every SET_SOCK from the task that runs DO_IT, and
// DO_IT blocks until the device is disconnected. Reports (0, errno) once set up (errno 0: the
// device is starting), then (1, errno) when DO_IT has returned and the device is cleared.
void RunIoctlDevice(IoctlParams p, Napi::ThreadSafeFunction tsfn) {
  auto report = [&tsfn](int phase, int err) {
    tsfn.BlockingCall([phase, err](Napi::Env env, Napi::Function cb) {
      cb.Call({Napi::Number::New(env, phase), Napi::Number::New(env, err)});
    });
  };
  auto closeFds = [&p] {
    for (int fd : p.fds) close(fd);
  };
  int dev = open(p.path.c_str(), O_RDWR | O_CLOEXEC);
  if (dev < 0) {
    int err = errno;
    closeFds();
    report(0, err);
    tsfn.Release();
    return;
  }
  int err = Ioctl(dev, NBD_SET_BLKSIZE, p.blockSize);
  if (err == 0) err = Ioctl(dev, NBD_SET_SIZE, p.sizeBytes);
  if (err == 0) err = Ioctl(dev, NBD_SET_FLAGS, p.flags);
  if (err == 0 && p.timeout > 0) err = Ioctl(dev, NBD_SET_TIMEOUT, p.timeout);
  for (size_t i = 0; err == 0 && i < p.fds.size(); i++) err = Ioctl(dev, NBD_SET_SOCK, static_cast<unsigned long>(p.fds[i]));
  // The kernel holds its own reference to each socket it took.
  closeFds();
  if (err != 0) {
    // Sockets already given to a device we could not start must not stay with it.
    Ioctl(dev, NBD_CLEAR_SOCK, 0);
    close(dev);
    report(0, err);
    tsfn.Release();
    return;
  }
  report(0, 0);
  err = Ioctl(dev, NBD_DO_IT, 0);
  Ioctl(dev, NBD_CLEAR_QUE, 0);
  Ioctl(dev, NBD_CLEAR_SOCK, 0);
  close(dev);
  report(1, err);
  tsfn.Release();
}

// ioctlStart(path, { sizeBytes, blockSize, flags, timeout }, fds, onEvent(phase, errno))
Napi::Value IoctlStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  IoctlParams p;
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsObject() || !FdsOf(info[2], &p.fds) || !info[3].IsFunction()) {
    return TypeErr(env, "ioctlStart(path, params, fds, onEvent)");
  }
  p.path = info[0].As<Napi::String>().Utf8Value();
  Napi::Object o = info[1].As<Napi::Object>();
  p.sizeBytes = static_cast<uint64_t>(NumberOr(o, "sizeBytes", 0));
  p.blockSize = static_cast<uint64_t>(NumberOr(o, "blockSize", 0));
  p.flags = static_cast<uint64_t>(NumberOr(o, "flags", 0));
  p.timeout = static_cast<uint64_t>(NumberOr(o, "timeout", 0));
  auto tsfn = Napi::ThreadSafeFunction::New(env, info[3].As<Napi::Function>(), "aionbd:nbd-ioctl", 0, 1);
  // The device's sockets keep the process alive while it is attached; this thread need not.
  tsfn.Unref(env);
  std::thread(RunIoctlDevice, std::move(p), tsfn).detach();
  return env.Undefined();
}

// ioctlDisconnect(path): NBD_DISCONNECT; the kernel sends NBD_CMD_DISC on every socket.
Napi::Value IoctlDisconnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return TypeErr(env, "ioctlDisconnect(path)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  return Queue(
      env, "ioctl NBD_DISCONNECT",
      [path] {
        int dev = open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (dev < 0) return errno;
        int err = Ioctl(dev, NBD_DISCONNECT, 0);
        close(dev);
        return err;
      },
      [](Napi::Env env) { return env.Undefined(); });
}

// ioctlSetSize(path, sizeBytes): NBD_SET_SIZE on a device started with the ioctls; a running
// device takes the new capacity at once.
Napi::Value IoctlSetSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) return TypeErr(env, "ioctlSetSize(path, sizeBytes)");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  auto size = static_cast<unsigned long>(info[1].As<Napi::Number>().DoubleValue());
  return Queue(
      env, "ioctl NBD_SET_SIZE",
      [path, size] {
        int dev = open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (dev < 0) return errno;
        int err = Ioctl(dev, NBD_SET_SIZE, size);
        close(dev);
        return err;
      },
      [](Napi::Env env) { return env.Undefined(); });
}

}  // namespace

Napi::Object NbdAttachInit(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("socketpair", Napi::Function::New(env, SocketPair, "socketpair"));
  o.Set("family", Napi::Function::New(env, Family, "family"));
  o.Set("connect", Napi::Function::New(env, Connect, "connect"));
  o.Set("disconnect", Napi::Function::New(env, Disconnect, "disconnect"));
  o.Set("reconfigure", Napi::Function::New(env, Reconfigure, "reconfigure"));
  o.Set("resize", Napi::Function::New(env, Resize, "resize"));
  o.Set("status", Napi::Function::New(env, Status, "status"));
  o.Set("Events", Events::Init(env));
  o.Set("ioctlStart", Napi::Function::New(env, IoctlStart, "ioctlStart"));
  o.Set("ioctlDisconnect", Napi::Function::New(env, IoctlDisconnect, "ioctlDisconnect"));
  o.Set("ioctlSetSize", Napi::Function::New(env, IoctlSetSize, "ioctlSetSize"));
  return o;
}

}  // namespace aionbd
