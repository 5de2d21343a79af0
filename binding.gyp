{
  "targets": [
    {
      "target_name": "aionbd",
      "sources": [
        "native/addon.cc",
        "native/aio_engine.cc",
        "native/aligned.cc",
        "native/file_ops.cc",
        "native/heap.cc",
        "native/limits.cc",
        "native/open_file.cc",
        "native/sock_io.cc",
        "native/os_error.cc",
        "native/nbd_attach.cc",
        "native/nbd_netlink.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
