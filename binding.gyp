{
  "variables": {
    # 1 when librbd's and librados's headers are installed (Debian: librbd-dev) and AIONBD_NO_RBD
    # is unset: the RBD bdev is compiled in. The libraries themselves are opened at run time
    # (native/rbd_lib.h says why), so nothing is linked either way.
    "aionbd_rbd%": "<!(node scripts/rbd-headers.mjs)"
  },
  "targets": [
    {
      "target_name": "aionbd",
      "sources": [
        "native/addon.cc",
        "native/aio_engine.cc",
        "native/aligned.cc",
        "native/completion_pump.cc",
        "native/constants.cc",
        "native/file_ops.cc",
        "native/heap.cc",
        "native/limits.cc",
        "native/open_file.cc",
        "native/slot_table.cc",
        "native/sock_io.cc",
        "native/uring_engine.cc",
        "native/os_error.cc",
        "native/nbd_attach.cc",
        "native/nbd_netlink.cc",
        "native/rbd_init.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions"],
      "conditions": [
        ["aionbd_rbd==1", {
          "sources": ["native/rbd_lib.cc", "native/rbd_cluster.cc", "native/rbd_image.cc"],
          "defines": ["AIONBD_HAVE_RBD"],
          "libraries": ["-ldl"]
        }]
      ]
    }
  ]
}
