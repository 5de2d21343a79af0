#include "rbd_cluster.h"

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rbd_job.h"

namespace aionbd {

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

// An option aionbd sets unless the configuration already changed it from Ceph's own default.
struct Default {
  std::string key, value, builtin;
};

struct ConnectArgs {
  std::string userId;  // empty: librados's default (admin)
  std::string confFile;
  std::string keyFile;
  bool readDefaultConf = false;
  std::vector<Default> defaults;
  Pairs params;    // applied last: they win
  rados_t cluster = nullptr;
};

std::string StringOr(Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

std::vector<Default> DefaultsOf(Napi::Object o) {
  std::vector<Default> out;
  Napi::Value v = o.Get("defaults");
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Array t = a.Get(i).As<Napi::Array>();
    out.push_back({t.Get(0u).ToString().Utf8Value(), t.Get(1u).ToString().Utf8Value(), t.Get(2u).ToString().Utf8Value()});
  }
  return out;
}

Pairs PairsOf(Napi::Object o, const char* key) {
  Pairs out;
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) return out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Array kv = a.Get(i).As<Napi::Array>();
    out.emplace_back(kv.Get(0u).ToString().Utf8Value(), kv.Get(1u).ToString().Utf8Value());
  }
  return out;
}

// Runs on the thread pool: rados_connect waits for the monitors up to client_mount_timeout.
int64_t DoConnect(const RbdLib* l, ConnectArgs& a, std::string& what) {
  rados_t c = nullptr;
  int rc = l->rados_create(&c, a.userId.empty() ? nullptr : a.userId.c_str());
  if (rc < 0) {
    what = "rados_create";
    return rc;
  }
  auto fail = [&](int r, std::string step) {
    what = std::move(step);
    l->rados_shutdown(c);
    return static_cast<int64_t>(r);
  };
  if (!a.confFile.empty() || a.readDefaultConf) {
    rc = l->rados_conf_read_file(c, a.confFile.empty() ? nullptr : a.confFile.c_str());
    if (rc < 0) return fail(rc, "rados_conf_read_file(" + (a.confFile.empty() ? std::string("default search path") : a.confFile) + ")");
  }
  for (auto& d : a.defaults) {
    char cur[64] = {0};
    bool unset = l->rados_conf_get(c, d.key.c_str(), cur, sizeof cur) < 0 || d.builtin == cur;
    if (unset && l->rados_conf_set(c, d.key.c_str(), d.value.c_str()) < 0) {
      return fail(-EINVAL, "rados_conf_set(" + d.key + ")");
    }
  }
  for (auto& kv : a.params) {
    rc = l->rados_conf_set(c, kv.first.c_str(), kv.second.c_str());
    if (rc < 0) return fail(rc, "rados_conf_set(" + kv.first + "=" + kv.second + ")");
  }
  if (!a.keyFile.empty()) {
    rc = l->rados_conf_set(c, "keyfile", a.keyFile.c_str());
    if (rc < 0) return fail(rc, "rados_conf_set(keyfile)");
  }
  rc = l->rados_connect(c);
  if (rc < 0) return fail(rc, "rados_connect");
  a.cluster = c;
  return 0;
}

}  // namespace

Napi::Function RbdCluster::Init(Napi::Env env) {
  return DefineClass(env, "RbdCluster",
                     {
                         InstanceMethod<&RbdCluster::Connect>("connect"),
                         InstanceMethod<&RbdCluster::Shutdown>("shutdown"),
                         InstanceMethod<&RbdCluster::Fsid>("fsid"),
                     });
}

// new RbdCluster(): loads the libraries (throws with code ENOLIBRBD when they are missing).
RbdCluster::RbdCluster(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RbdCluster>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  std::string why;
  lib_ = LoadRbdLib(&why);
  if (lib_ == nullptr) {
    Napi::Error e = Napi::Error::New(env, why);
    e.Set("code", "ENOLIBRBD");
    e.ThrowAsJavaScriptException();
    return;
  }
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  hookAdded_ = true;
}

RbdCluster::~RbdCluster() {
  if (hookAdded_) napi_remove_env_cleanup_hook(env_, CleanupHook, this);
  // A connection still up here was never shut down and has no open image: release it.
  if (connected_ && images_ == 0) lib_->rados_shutdown(cluster_);
}

// connect({ userId, confFile, keyFile, readDefaultConf, defaults: [[k, v, builtin]], params: [[k, v]] }, cb(err))
Napi::Value RbdCluster::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "connect(options, callback)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (connected_ || busy_) {
    Napi::Error::New(env, "RbdCluster: already connected").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  auto args = std::make_shared<ConnectArgs>();
  args->userId = StringOr(o, "userId");
  args->confFile = StringOr(o, "confFile");
  args->keyFile = StringOr(o, "keyFile");
  args->readDefaultConf = o.Get("readDefaultConf").ToBoolean();
  args->defaults = DefaultsOf(o);
  args->params = PairsOf(o, "params");
  busy_ = true;
  const RbdLib* l = lib_;
  RbdJob::Start(
      info[1].As<Napi::Function>(), info.This().As<Napi::Object>(), "rados_connect",
      [l, args](std::string& what) { return DoConnect(l, *args, what); },
      [this, args](Napi::Env e, int64_t) {
        busy_ = false;
        if (args->cluster != nullptr) {
          cluster_ = args->cluster;
          connected_ = true;
        }
        return e.Undefined();
      });
  return env.Undefined();
}

// shutdown(cb(err)): stops the connection's threads. JS calls it after its last image closed.
Napi::Value RbdCluster::Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (images_ > 0 || busy_) {
    Napi::Error::New(env, "RbdCluster: images are still open, or a connect runs").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!connected_) {
    info[0].As<Napi::Function>().Call({env.Null()});
    return env.Undefined();
  }
  rados_t c = cluster_;
  connected_ = false;
  cluster_ = nullptr;
  const RbdLib* l = lib_;
  RbdJob::Start(info[0].As<Napi::Function>(), info.This().As<Napi::Object>(), "rados_shutdown",
                [l, c](std::string&) {
                  l->rados_shutdown(c);
                  return int64_t{0};
                });
  return env.Undefined();
}

Napi::Value RbdCluster::Fsid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!connected_) return env.Null();
  char buf[64] = {0};
  if (lib_->rados_cluster_fsid(cluster_, buf, sizeof buf - 1) < 0) return env.Null();
  return Napi::String::New(env, buf);
}

// The process exits with the connection up: shut it down if no image is open (librados's
// threads must not be running while its static state is destroyed); an open image's I/O may
// still be in flight, so then it is left to the exit.
void RbdCluster::CleanupHook(void* arg) {
  auto* self = static_cast<RbdCluster*>(arg);
  self->hookAdded_ = false;
  if (self->connected_ && self->images_ == 0) {
    self->lib_->rados_shutdown(self->cluster_);
    self->connected_ = false;
    self->cluster_ = nullptr;
  }
}

}  // namespace aionbd
