// The addon's `rbd` object. With librbd's headers at build time (binding.gyp defines
// AIONBD_HAVE_RBD) it holds the RbdCluster and RbdImage classes; without them, only why not,
// so that JS can say which package to install.
#include <napi.h>

#ifdef AIONBD_HAVE_RBD
#include "rbd_cluster.h"
#include "rbd_image.h"
#endif

namespace aionbd {

Napi::Object RbdInit(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
#ifdef AIONBD_HAVE_RBD
  o.Set("available", true);
  o.Set("RbdCluster", RbdCluster::Init(env));
  o.Set("RbdImage", RbdImage::Init(env));
#else
  o.Set("available", false);
  o.Set("reason", "this aionbd was built without RBD support (no librbd headers at build time): install librbd-dev "
                  "(apt-get install librbd-dev) and rebuild the addon (npm run build)");
#endif
  return o;
}

}  // namespace aionbd
