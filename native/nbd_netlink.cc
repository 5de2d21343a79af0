#include "nbd_netlink.h"

#include <linux/genetlink.h>
#include <linux/nbd-netlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace aionbd::nbdnl {

namespace {

// An answer that does not come within this long means the kernel is stuck: report it rather
// than block a thread-pool thread forever.
constexpr int kReplyTimeoutSec = 60;
constexpr size_t kRecvBuffer = 64 * 1024;

class Socket {
 public:
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  int Open(bool nonblocking) {
    fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), NETLINK_GENERIC);
    if (fd_ < 0) return errno;
    timeval tv{kReplyTimeoutSec, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return errno;
    return 0;
  }
  int fd() const { return fd_; }
  int Release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_ = -1;
};

// One generic-netlink request. Attributes are appended in place; offsets, not pointers, are
// kept across appends because the buffer moves when it grows.
class Msg {
 public:
  Msg(uint16_t type, uint8_t cmd, uint8_t version) : b_(NLMSG_HDRLEN + GENL_HDRLEN, 0) {
    Hdr()->nlmsg_type = type;
    Hdr()->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    auto* g = reinterpret_cast<genlmsghdr*>(b_.data() + NLMSG_HDRLEN);
    g->cmd = cmd;
    g->version = version;
  }
  void Put(uint16_t type, const void* data, size_t len) {
    size_t at = b_.size();
    b_.resize(at + NLA_ALIGN(NLA_HDRLEN + len), 0);
    auto* a = reinterpret_cast<nlattr*>(b_.data() + at);
    a->nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
    a->nla_type = type;
    std::memcpy(b_.data() + at + NLA_HDRLEN, data, len);
  }
  void U32(uint16_t type, uint32_t v) { Put(type, &v, sizeof v); }
  void U64(uint16_t type, uint64_t v) { Put(type, &v, sizeof v); }
  void Str(uint16_t type, const std::string& s) { Put(type, s.c_str(), s.size() + 1); }
  size_t Nest(uint16_t type) {
    size_t at = b_.size();
    b_.resize(at + NLA_HDRLEN, 0);
    reinterpret_cast<nlattr*>(b_.data() + at)->nla_type = type | NLA_F_NESTED;
    return at;
  }
  void End(size_t at) { reinterpret_cast<nlattr*>(b_.data() + at)->nla_len = static_cast<uint16_t>(b_.size() - at); }
  void Sockets(const std::vector<int>& fds) {
    size_t list = Nest(NBD_ATTR_SOCKETS);
    for (int fd : fds) {
      size_t item = Nest(NBD_SOCK_ITEM);
      U32(NBD_SOCK_FD, static_cast<uint32_t>(fd));
      End(item);
    }
    End(list);
  }
  nlmsghdr* Hdr() { return reinterpret_cast<nlmsghdr*>(b_.data()); }
  std::vector<uint8_t>& bytes() { return b_; }

 private:
  std::vector<uint8_t> b_;
};

using AttrFn = std::function<void(uint16_t type, const uint8_t* data, size_t len)>;

void ForEachAttr(const uint8_t* p, size_t len, const AttrFn& fn) {
  while (len >= NLA_HDRLEN) {
    auto* a = reinterpret_cast<const nlattr*>(p);
    if (a->nla_len < NLA_HDRLEN || a->nla_len > len) return;
    fn(a->nla_type & NLA_TYPE_MASK, p + NLA_HDRLEN, a->nla_len - NLA_HDRLEN);
    size_t step = NLA_ALIGN(a->nla_len);
    if (step >= len) return;
    p += step;
    len -= step;
  }
}

uint32_t U32Of(const uint8_t* d, size_t len) {
  uint32_t v = 0;
  if (len >= sizeof v) std::memcpy(&v, d, sizeof v);
  return v;
}

// The attributes of a generic-netlink message (after its genlmsghdr).
void GenlAttrs(const nlmsghdr* h, const AttrFn& fn) {
  size_t hdr = NLMSG_HDRLEN + GENL_HDRLEN;
  if (h->nlmsg_len < hdr) return;
  ForEachAttr(reinterpret_cast<const uint8_t*>(h) + hdr, h->nlmsg_len - hdr, fn);
}

// Sends m and reads until its acknowledgement; every other answer to it goes to onReply.
int Transact(Msg& m, const std::function<void(const nlmsghdr*)>& onReply) {
  Socket s;
  if (int err = s.Open(false)) return err;
  static uint32_t seq = 0;
  m.Hdr()->nlmsg_seq = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
  m.Hdr()->nlmsg_len = static_cast<uint32_t>(m.bytes().size());
  sockaddr_nl to{};
  to.nl_family = AF_NETLINK;
  ssize_t sent;
  do sent = sendto(s.fd(), m.bytes().data(), m.bytes().size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) return errno;
  std::vector<uint8_t> buf(kRecvBuffer);
  for (;;) {
    ssize_t n = recv(s.fd(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN ? ETIMEDOUT : errno;
    }
    auto* h = reinterpret_cast<nlmsghdr*>(buf.data());
    size_t left = static_cast<size_t>(n);
    for (; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != m.Hdr()->nlmsg_seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(h));
        return -e->error;
      }
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      onReply(h);
    }
  }
}

int FamilyId(uint16_t* id) {
  Family f;
  int err = ResolveFamily(&f);
  *id = f.id;
  return err;
}

}  // namespace

int ResolveFamily(Family* out) {
  Msg m(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1);
  m.Str(CTRL_ATTR_FAMILY_NAME, NBD_GENL_FAMILY_NAME);
  int err = Transact(m, [out](const nlmsghdr* h) {
    GenlAttrs(h, [out](uint16_t type, const uint8_t* d, size_t len) {
      if (type == CTRL_ATTR_FAMILY_ID && len >= 2) std::memcpy(&out->id, d, 2);
      if (type != CTRL_ATTR_MCAST_GROUPS) return;
      ForEachAttr(d, len, [out](uint16_t, const uint8_t* g, size_t glen) {
        std::string name;
        uint32_t id = 0;
        ForEachAttr(g, glen, [&](uint16_t t, const uint8_t* v, size_t vlen) {
          if (t == CTRL_ATTR_MCAST_GRP_NAME) name.assign(reinterpret_cast<const char*>(v), strnlen(reinterpret_cast<const char*>(v), vlen));
          if (t == CTRL_ATTR_MCAST_GRP_ID) id = U32Of(v, vlen);
        });
        if (name == NBD_GENL_MCAST_GROUP_NAME) out->mcastGroup = id;
      });
    });
  });
  if (err == 0 && out->id == 0) err = ENOENT;
  return err;
}

int Connect(const ConnectParams& p, uint32_t* index) {
  uint16_t fam;
  if (int err = FamilyId(&fam)) return err;
  Msg m(fam, NBD_CMD_CONNECT, NBD_GENL_VERSION);
  if (p.index >= 0) m.U32(NBD_ATTR_INDEX, static_cast<uint32_t>(p.index));
  m.U64(NBD_ATTR_SIZE_BYTES, p.sizeBytes);
  m.U64(NBD_ATTR_BLOCK_SIZE_BYTES, p.blockSize);
  m.U64(NBD_ATTR_SERVER_FLAGS, p.serverFlags);
  if (p.clientFlags != 0) m.U64(NBD_ATTR_CLIENT_FLAGS, p.clientFlags);
  if (p.timeout >= 0) m.U64(NBD_ATTR_TIMEOUT, static_cast<uint64_t>(p.timeout));
  if (p.deadConnTimeout >= 0) m.U64(NBD_ATTR_DEAD_CONN_TIMEOUT, static_cast<uint64_t>(p.deadConnTimeout));
  if (!p.backendId.empty()) m.Str(NBD_ATTR_BACKEND_IDENTIFIER, p.backendId);
  m.Sockets(p.fds);
  bool got = false;
  int err = Transact(m, [&](const nlmsghdr* h) {
    GenlAttrs(h, [&](uint16_t type, const uint8_t* d, size_t len) {
      if (type == NBD_ATTR_INDEX) {
        *index = U32Of(d, len);
        got = true;
      }
    });
  });
  // A kernel that answered CONNECT without naming the device gave us nothing to disconnect.
  if (err == 0 && !got) err = EPROTO;
  return err;
}

int Disconnect(uint32_t index) {
  uint16_t fam;
  if (int err = FamilyId(&fam)) return err;
  Msg m(fam, NBD_CMD_DISCONNECT, NBD_GENL_VERSION);
  m.U32(NBD_ATTR_INDEX, index);
  return Transact(m, [](const nlmsghdr*) {});
}

int Reconfigure(uint32_t index, const std::vector<int>& fds, const std::string& backendId) {
  uint16_t fam;
  if (int err = FamilyId(&fam)) return err;
  Msg m(fam, NBD_CMD_RECONFIGURE, NBD_GENL_VERSION);
  m.U32(NBD_ATTR_INDEX, index);
  // The kernel refuses a RECONFIGURE whose identifier differs from the one given at CONNECT.
  if (!backendId.empty()) m.Str(NBD_ATTR_BACKEND_IDENTIFIER, backendId);
  m.Sockets(fds);
  return Transact(m, [](const nlmsghdr*) {});
}

int Resize(uint32_t index, uint64_t sizeBytes, const std::string& backendId) {
  uint16_t fam;
  if (int err = FamilyId(&fam)) return err;
  Msg m(fam, NBD_CMD_RECONFIGURE, NBD_GENL_VERSION);
  m.U32(NBD_ATTR_INDEX, index);
  if (!backendId.empty()) m.Str(NBD_ATTR_BACKEND_IDENTIFIER, backendId);
  m.U64(NBD_ATTR_SIZE_BYTES, sizeBytes);
  return Transact(m, [](const nlmsghdr*) {});
}

int Status(int64_t index, std::vector<DeviceStatus>* out) {
  uint16_t fam;
  if (int err = FamilyId(&fam)) return err;
  Msg m(fam, NBD_CMD_STATUS, NBD_GENL_VERSION);
  if (index >= 0) m.U32(NBD_ATTR_INDEX, static_cast<uint32_t>(index));
  return Transact(m, [out](const nlmsghdr* h) {
    GenlAttrs(h, [out](uint16_t type, const uint8_t* d, size_t len) {
      if (type != NBD_ATTR_DEVICE_LIST) return;
      ForEachAttr(d, len, [out](uint16_t t, const uint8_t* item, size_t ilen) {
        if (t != NBD_DEVICE_ITEM) return;
        DeviceStatus st{0, false};
        ForEachAttr(item, ilen, [&st](uint16_t a, const uint8_t* v, size_t vlen) {
          if (a == NBD_DEVICE_INDEX) st.index = U32Of(v, vlen);
          if (a == NBD_DEVICE_CONNECTED && vlen >= 1) st.connected = v[0] != 0;
        });
        out->push_back(st);
      });
    });
  });
}

int OpenEventSocket(uint32_t group, int* fd) {
  Socket s;
  if (int err = s.Open(true)) return err;
  if (setsockopt(s.fd(), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0) return errno;
  *fd = s.Release();
  return 0;
}

int ReadEvents(int fd, uint16_t familyId, const std::function<void(uint8_t, uint32_t)>& fn) {
  std::vector<uint8_t> buf(kRecvBuffer);
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN ? 0 : errno;
    }
    auto* h = reinterpret_cast<nlmsghdr*>(buf.data());
    size_t left = static_cast<size_t>(n);
    for (; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type != familyId || h->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN) continue;
      uint8_t cmd = reinterpret_cast<const genlmsghdr*>(NLMSG_DATA(h))->cmd;
      uint32_t index = kNoIndex;
      GenlAttrs(h, [&index](uint16_t type, const uint8_t* d, size_t len) {
        if (type == NBD_ATTR_INDEX) index = U32Of(d, len);
      });
      fn(cmd, index);
    }
  }
}

}  // namespace aionbd::nbdnl
