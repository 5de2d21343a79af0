// File geometry and the operations that Linux AIO cannot do asynchronously (fallocate, block
// device discard/zeroout, lseek SEEK_DATA/SEEK_HOLE, fdatasync). Each runs on the libuv thread
// pool with a plain struct of arguments, so the main loop never blocks on them.
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <napi.h>

#include "file_ops.h"
#include "os_error.h"

namespace aionbd {

namespace {

constexpr unsigned kStatxDioAlign = 0x2000;  // STATX_DIOALIGN (Linux 6.1)
constexpr size_t kStatxDioMemAlignOff = 152;   // offsets in struct statx
constexpr size_t kStatxDioOffsetAlignOff = 156;

int64_t WriteZeroes(int fd, uint64_t off, uint64_t len) {
  constexpr size_t kChunk = 1 << 20;
  void* z = nullptr;
  if (posix_memalign(&z, 4096, kChunk) != 0) return -ENOMEM;
  std::memset(z, 0, kChunk);
  int64_t rc = 0;
  while (len > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(len, kChunk));
    ssize_t w = pwrite(fd, z, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      rc = -errno;
      break;
    }
    if (w == 0) {
      rc = -EIO;
      break;
    }
    off += static_cast<uint64_t>(w);
    len -= static_cast<uint64_t>(w);
  }
  std::free(z);
  return rc;
}

int64_t Fallocate(int fd, int mode, uint64_t off, uint64_t len) {
  int rc;
  do rc = fallocate(fd, mode, static_cast<off_t>(off), static_cast<off_t>(len));
  while (rc < 0 && errno == EINTR);
  return rc < 0 ? -errno : 0;
}

bool Unsupported(int64_t rc) { return rc == -EOPNOTSUPP || rc == -ENOSYS || rc == -EINVAL; }

int64_t RunOp(uint32_t op, int fd, uint64_t off, uint64_t len) {
  switch (op) {
    case kPunchHole: {
      int64_t rc = Fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
      return rc;
    }
    case kZeroRange: {
      int64_t rc = Fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len);
      if (!Unsupported(rc)) return rc;
      // No ZERO_RANGE (tmpfs, some file systems): punch, then allocate the range again.
      rc = Fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
      if (rc == 0) rc = Fallocate(fd, FALLOC_FL_KEEP_SIZE, off, len);
      if (!Unsupported(rc)) return rc;
      return WriteZeroes(fd, off, len);
    }
    case kDiscard:
    case kZeroOut: {
      uint64_t range[2] = {off, len};
      int rc = ioctl(fd, op == kDiscard ? BLKDISCARD : BLKZEROOUT, range);
      return rc < 0 ? -errno : 0;
    }
    case kFdatasync: {
      int rc;
      do rc = fdatasync(fd);
      while (rc < 0 && errno == EINTR);
      return rc < 0 ? -errno : 0;
    }
    case kSeekData:
    case kSeekHole: {
      off_t r = lseek(fd, static_cast<off_t>(off), op == kSeekData ? SEEK_DATA : SEEK_HOLE);
      return r < 0 ? -errno : static_cast<int64_t>(r);
    }
    case kWriteZeroes:
      return WriteZeroes(fd, off, len);
    case kPunchOrZero: {
      int64_t rc = Fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
      return Unsupported(rc) ? RunOp(kZeroRange, fd, off, len) : rc;
    }
    case kAllocate:
      // No fallback: writing zeroes instead is prealloc=full, which the user did not ask for.
      return Fallocate(fd, 0, off, len);
    case kZeroRangeFast: {
      int64_t rc = Fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len);
      return Unsupported(rc) ? -EOPNOTSUPP : rc;
    }
    default:
      return -EINVAL;
  }
}

class FileOpWorker : public Napi::AsyncWorker {
 public:
  FileOpWorker(Napi::Function cb, uint32_t op, int fd, uint64_t off, uint64_t len)
      : Napi::AsyncWorker(cb, "aionbd:fileop"), op_(op), fd_(fd), off_(off), len_(len) {}
  void Execute() override { res_ = RunOp(op_, fd_, off_, len_); }
  void OnOK() override {
    Napi::Env env = Env();
    Callback().MakeCallback(Receiver().Value(), {Napi::Number::New(env, static_cast<double>(res_))});
  }

 private:
  uint32_t op_;
  int fd_;
  uint64_t off_, len_;
  int64_t res_ = 0;
};

}  // namespace

// fileOp(op, fd, offset, length, cb(result)): result >= 0 on success (the offset for SEEK_*),
// -errno on failure. Offsets are doubles: exact below 2^53, which validation guarantees.
Napi::Value FileOpAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[4].IsFunction()) {
    Napi::TypeError::New(env, "fileOp(op, fd, offset, length, cb)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t op = info[0].As<Napi::Number>().Uint32Value();
  int fd = info[1].As<Napi::Number>().Int32Value();
  auto off = static_cast<uint64_t>(info[2].As<Napi::Number>().DoubleValue());
  auto len = static_cast<uint64_t>(info[3].As<Napi::Number>().DoubleValue());
  auto* w = new FileOpWorker(info[4].As<Napi::Function>(), op, fd, off, len);
  w->Queue();
  return env.Undefined();
}

// fileInfo(fd): what kind of file this is, its size, and the alignments O_DIRECT needs.
Napi::Value FileInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct stat st;
  if (fstat(fd, &st) < 0) {
    ThrowOsError(env, "fstat", errno);
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  double size = static_cast<double>(st.st_size);
  uint32_t logical = 0, physical = 0;
  const char* type = S_ISREG(st.st_mode) ? "file" : S_ISBLK(st.st_mode) ? "block" : "other";
  if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
      ThrowOsError(env, "ioctl(BLKGETSIZE64)", errno);
      return env.Undefined();
    }
    size = static_cast<double>(bytes);
    int ss = 0;
    unsigned int pbs = 0;
    if (ioctl(fd, BLKSSZGET, &ss) == 0) logical = static_cast<uint32_t>(ss);
    if (ioctl(fd, BLKPBSZGET, &pbs) == 0) physical = pbs;
  }
  alignas(8) unsigned char sx[256];
  std::memset(sx, 0, sizeof sx);
  uint32_t memAlign = 0, offAlign = 0;
  if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, kStatxDioAlign, sx) == 0) {
    uint32_t mask;
    std::memcpy(&mask, sx, sizeof mask);
    if (mask & kStatxDioAlign) {
      std::memcpy(&memAlign, sx + kStatxDioMemAlignOff, 4);
      std::memcpy(&offAlign, sx + kStatxDioOffsetAlignOff, 4);
    }
  }
  int fl = fcntl(fd, F_GETFL);
  o.Set("type", type);
  o.Set("size", size);
  o.Set("logicalBlockSize", logical);
  o.Set("physicalBlockSize", physical);
  o.Set("dioMemAlign", memAlign);
  o.Set("dioOffsetAlign", offAlign);
  o.Set("direct", fl >= 0 && (fl & O_DIRECT) != 0);
  o.Set("fsBlockSize", static_cast<double>(st.st_blksize));
  return o;
}

}  // namespace aionbd
