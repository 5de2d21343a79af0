#include "rbd_lib.h"

#include <dlfcn.h>

#include <cstdlib>

namespace aionbd {

namespace {

RbdLib g_lib{};
bool g_loaded = false;
std::string g_error;

// AIONBD_LIBRBD / AIONBD_LIBRADOS name other files (a test of the missing-library path).
const char* LibPath(const char* env, const char* soname) {
  const char* p = std::getenv(env);
  return p != nullptr && *p != '\0' ? p : soname;
}

template <typename T>
bool Sym(void* h, const char* name, T* out, std::string* missing) {
  void* p = dlsym(h, name);
  if (p == nullptr) {
    if (!missing->empty()) *missing += ", ";
    *missing += name;
    return false;
  }
  *out = reinterpret_cast<T>(p);
  return true;
}

bool Load(std::string* error) {
  // RTLD_LOCAL: Ceph's symbols stay out of the global namespace of the node process.
  void* rados = dlopen(LibPath("AIONBD_LIBRADOS", "librados.so.2"), RTLD_NOW | RTLD_LOCAL);
  if (rados == nullptr) {
    *error = std::string("librados is not installed (") + dlerror() + "): install the librbd1 package, which brings it (apt-get install librbd1)";
    return false;
  }
  void* rbd = dlopen(LibPath("AIONBD_LIBRBD", "librbd.so.1"), RTLD_NOW | RTLD_LOCAL);
  if (rbd == nullptr) {
    *error = std::string("librbd is not installed (") + dlerror() + "): install the librbd1 package (apt-get install librbd1)";
    return false;
  }
  std::string missing;
  RbdLib& l = g_lib;
  bool ok = true;
#define AIONBD_SYM(h, f) ok = Sym(h, #f, &l.f, &missing) && ok
  AIONBD_SYM(rados, rados_create);
  AIONBD_SYM(rados, rados_conf_read_file);
  AIONBD_SYM(rados, rados_conf_set);
  AIONBD_SYM(rados, rados_conf_get);
  AIONBD_SYM(rados, rados_connect);
  AIONBD_SYM(rados, rados_shutdown);
  AIONBD_SYM(rados, rados_cluster_fsid);
  AIONBD_SYM(rados, rados_ioctx_create);
  AIONBD_SYM(rados, rados_ioctx_destroy);
  AIONBD_SYM(rbd, rbd_open);
  AIONBD_SYM(rbd, rbd_open_read_only);
  AIONBD_SYM(rbd, rbd_close);
  AIONBD_SYM(rbd, rbd_get_size);
  AIONBD_SYM(rbd, rbd_resize);
  AIONBD_SYM(rbd, rbd_get_features);
  AIONBD_SYM(rbd, rbd_update_watch);
  AIONBD_SYM(rbd, rbd_update_unwatch);
  AIONBD_SYM(rbd, rbd_diff_iterate2);
  AIONBD_SYM(rbd, rbd_aio_create_completion);
  AIONBD_SYM(rbd, rbd_aio_release);
  AIONBD_SYM(rbd, rbd_aio_get_return_value);
  AIONBD_SYM(rbd, rbd_aio_read);
  AIONBD_SYM(rbd, rbd_aio_write);
  AIONBD_SYM(rbd, rbd_aio_flush);
  AIONBD_SYM(rbd, rbd_aio_discard);
  AIONBD_SYM(rbd, rbd_aio_write_zeroes);
  AIONBD_SYM(rbd, rbd_version);
#undef AIONBD_SYM
  if (!ok) {
    // Octopus (15) added write_zeroes; anything older lacks it.
    *error = "librbd is too old (missing " + missing + "): install librbd1 of Ceph 15 or newer";
    return false;
  }
  // The handles stay open for the life of the process: librbd's threads and static state
  // outlive any one cluster connection.
  return true;
}

}  // namespace

const RbdLib* LoadRbdLib(std::string* error) {
  if (!g_loaded) {
    g_loaded = true;
    if (!Load(&g_error)) g_lib = RbdLib{};
  }
  if (g_lib.rbd_open == nullptr) {
    *error = g_error;
    return nullptr;
  }
  return &g_lib;
}

}  // namespace aionbd
