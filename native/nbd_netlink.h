#pragma once
// The kernel's generic-netlink "nbd" family (include/uapi/linux/nbd-netlink.h), spoken with
// plain sockets: no libnl, so the addon builds and runs with nothing but the kernel headers.
// No N-API here: these functions block (the kernel sends NBD_CMD_DISC on every socket during a
// DISCONNECT, and the family lookup may load the module), so callers run them off the main
// thread. Each returns 0 or a positive errno.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace aionbd::nbdnl {

// The device index of a multicast message that named none: JS then looks at every device.
constexpr uint32_t kNoIndex = UINT32_MAX;

struct Family {
  uint16_t id = 0;
  uint32_t mcastGroup = 0;  // 0: the kernel has no multicast group (no LINK_DEAD events)
};

struct ConnectParams {
  int64_t index = -1;  // -1: the kernel picks a free device (or makes a new one)
  uint64_t sizeBytes = 0;
  uint64_t blockSize = 0;
  uint64_t serverFlags = 0;
  uint64_t clientFlags = 0;
  int64_t timeout = -1;          // seconds; -1: not sent
  int64_t deadConnTimeout = -1;  // seconds; -1: not sent
  std::string backendId;         // empty: not sent
  std::vector<int> fds;
};

struct DeviceStatus {
  uint32_t index;
  bool connected;
};

int ResolveFamily(Family* out);
int Connect(const ConnectParams& p, uint32_t* index);
int Disconnect(uint32_t index);
// Hands the kernel new sockets for a started device; each replaces one dead connection.
int Reconfigure(uint32_t index, const std::vector<int>& fds, const std::string& backendId);
// Tells a started device its new size (the block size stays); the kernel updates the capacity
// at once and the disk's users see the change.
int Resize(uint32_t index, uint64_t sizeBytes, const std::string& backendId);
// index -1: every device.
int Status(int64_t index, std::vector<DeviceStatus>* out);

// A non-blocking socket subscribed to the family's multicast group (LINK_DEAD).
int OpenEventSocket(uint32_t group, int* fd);
// Reads what is queued and calls fn(cmd, index) per nbd message. Returns 0 once drained, or an
// errno (ENOBUFS: the kernel dropped events, so the caller must look at every device again).
int ReadEvents(int fd, uint16_t familyId, const std::function<void(uint8_t, uint32_t)>& fn);

}  // namespace aionbd::nbdnl
