// librados and librbd, opened with dlopen the first time an RBD bdev or cluster is made.
//
// Why not link them: the headers come from librbd-dev at build time (the prototypes below are
// taken from them, so a mismatch is a compile error), but linking would make the whole addon
// fail to load on a machine without librbd1, and would load Ceph's ~40 shared libraries and run
// their static constructors in every aionbd process, RBD or not. Opened on demand, a missing
// library is one clear error from bdev_rbd_create, and nothing else changes.
#pragma once
#include <rados/librados.h>
#include <rbd/librbd.h>

#include <string>

namespace aionbd {

struct RbdLib {
  decltype(&::rados_create) rados_create;
  decltype(&::rados_conf_read_file) rados_conf_read_file;
  decltype(&::rados_conf_set) rados_conf_set;
  decltype(&::rados_conf_get) rados_conf_get;
  decltype(&::rados_connect) rados_connect;
  decltype(&::rados_shutdown) rados_shutdown;
  decltype(&::rados_cluster_fsid) rados_cluster_fsid;
  decltype(&::rados_ioctx_create) rados_ioctx_create;
  decltype(&::rados_ioctx_destroy) rados_ioctx_destroy;
  decltype(&::rbd_open) rbd_open;
  decltype(&::rbd_open_read_only) rbd_open_read_only;
  decltype(&::rbd_close) rbd_close;
  decltype(&::rbd_get_size) rbd_get_size;
  decltype(&::rbd_resize) rbd_resize;
  decltype(&::rbd_get_features) rbd_get_features;
  decltype(&::rbd_update_watch) rbd_update_watch;
  decltype(&::rbd_update_unwatch) rbd_update_unwatch;
  decltype(&::rbd_diff_iterate2) rbd_diff_iterate2;
  decltype(&::rbd_aio_create_completion) rbd_aio_create_completion;
  decltype(&::rbd_aio_release) rbd_aio_release;
  decltype(&::rbd_aio_get_return_value) rbd_aio_get_return_value;
  decltype(&::rbd_aio_read) rbd_aio_read;
  decltype(&::rbd_aio_write) rbd_aio_write;
  decltype(&::rbd_aio_flush) rbd_aio_flush;
  decltype(&::rbd_aio_discard) rbd_aio_discard;
  decltype(&::rbd_aio_write_zeroes) rbd_aio_write_zeroes;
  decltype(&::rbd_version) rbd_version;
};

// The libraries, loaded once (main thread only). Null with `error` set to one line that names
// what is missing and the Debian package that brings it.
const RbdLib* LoadRbdLib(std::string* error);

}  // namespace aionbd
