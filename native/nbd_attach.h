#pragma once
#include <napi.h>

#include <cstdint>

namespace aionbd {

// The `nbd` object of the addon: kernel NBD attach without nbd-client. Netlink commands
// (connect, disconnect, reconfigure, status, family) return promises and run on the thread
// pool; `Events` listens for LINK_DEAD on the main loop; the ioctl fallback runs each device on
// a thread of its own, because NBD_DO_IT blocks for as long as the device is attached. Policy
// (which device, when to reconnect, what an errno means to the user) lives in
// src/nbd/kernel/.
Napi::Object NbdAttachInit(Napi::Env env);

// The cmd Events reports when the kernel dropped multicast messages (ENOBUFS): NBD_CMD_UNSPEC,
// which the kernel never sends. JS then looks at every device.
constexpr uint8_t kNbdEventsLost = 0;

}  // namespace aionbd
