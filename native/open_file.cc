// Opening the file under an AIO bdev so that what is served is exactly what was judged.
//
// A path is resolved once, to an fd, and every decision (kind of file, hard links) is taken on
// that fd with fstat, never on the name again: a name can change between a check and an open.
// Under an --allow-path root the path is resolved relative to a directory fd of the root with
// openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS), or, on kernels without
// openat2 (before 5.6), by a walk of openat(O_NOFOLLOW) one component at a time. The caller
// passes a path already made real (no symlinks, no ".."), so any symlink met now means the tree
// changed under us, and is refused rather than followed.
//
// Opening never blocks: the name is first opened O_PATH (which neither blocks on a FIFO nor
// runs a device driver's open), and only a regular file or a block device is then opened for
// I/O, with O_NONBLOCK in case the name was swapped in between; the opened fd is judged again.
// O_DIRECT is set afterwards with fcntl, so a file system that refuses it is told apart from a
// file that is not one we serve, and the fd stays the one that was judged.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include <napi.h>

#include "os_error.h"

namespace aionbd {

namespace {

constexpr uint64_t kResolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;

int Close(int fd) {
  int saved = errno;
  if (fd >= 0) close(fd);
  errno = saved;
  return -1;
}

// openat2 beneath dirfd; -1 with errno ENOSYS where the kernel has no openat2.
int OpenAt2(int dirfd, const std::string& rel, int flags) {
  struct open_how how = {};
  how.flags = static_cast<uint64_t>(flags);
  how.resolve = kResolve;
  long fd;
  do fd = syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how);
  while (fd < 0 && (errno == EINTR || errno == EAGAIN));
  return static_cast<int>(fd);
}

// The fallback: one component at a time, never following a symlink, never going up.
int WalkBeneath(int dirfd, const std::string& rel, int flags) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t slash = rel.find('/', start);
    if (slash == std::string::npos) slash = rel.size();
    std::string c = rel.substr(start, slash - start);
    if (c == "..") {
      errno = EXDEV;
      return -1;
    }
    if (!c.empty() && c != ".") parts.push_back(c);
    start = slash + 1;
  }
  if (parts.empty()) {
    // The root itself: a directory, judged (and refused) by the caller.
    return openat(dirfd, ".", flags | O_NOFOLLOW);
  }
  int cur = dirfd;
  for (size_t i = 0; i + 1 < parts.size(); i++) {
    int next = openat(cur, parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cur != dirfd) Close(cur);
    if (next < 0) return -1;
    cur = next;
  }
  int fd = openat(cur, parts.back().c_str(), flags | O_NOFOLLOW);
  if (cur != dirfd) Close(cur);
  return fd;
}

struct Opener {
  int rootfd = AT_FDCWD;
  bool beneath = false;
  bool walk = false;  // forced by the caller (tests of the fallback), or openat2 missing
  std::string path;

  int Open(int flags) {
    // openat2 refuses O_PATH with any flag O_PATH ignores.
    flags |= (flags & O_PATH) != 0 ? O_CLOEXEC : O_CLOEXEC | O_NOCTTY;
    if (!beneath) return openat(AT_FDCWD, path.c_str(), flags);
    if (!walk) {
      int fd = OpenAt2(rootfd, path.empty() ? "." : path, flags);
      if (fd >= 0 || errno != ENOSYS) return fd;
      walk = true;
    }
    return WalkBeneath(rootfd, path, flags);
  }
};

bool Served(const struct stat& st) { return S_ISREG(st.st_mode) || S_ISBLK(st.st_mode); }

const char* Kind(const struct stat& st) {
  switch (st.st_mode & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFBLK: return "block";
    case S_IFCHR: return "character device";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "symlink";
    default: return "other";
  }
}

}  // namespace

// openFile(path, {root?, write, direct, walk?}): {fd, kind, nlink, direct, resolve}.
// With root, path is relative to it and resolved beneath it. fd is -1 (nothing left open) when
// the file is not a regular file or a block device; kind then says what it is. Throws an
// OsError (code, errno, syscall) when a system call fails.
Napi::Value OpenFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject()) {
    Napi::TypeError::New(env, "openFile(path, {root?, write, direct, walk?})").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[1].As<Napi::Object>();
  Opener op;
  op.path = info[0].As<Napi::String>().Utf8Value();
  bool write = o.Get("write").ToBoolean();
  bool direct = o.Get("direct").ToBoolean();
  op.walk = o.Get("walk").ToBoolean();
  Napi::Value root = o.Get("root");
  if (root.IsString()) {
    op.beneath = true;
    op.rootfd = open(root.As<Napi::String>().Utf8Value().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (op.rootfd < 0) {
      ThrowOsError(env, "open(root)", errno);
      return env.Undefined();
    }
  }
  auto fail = [&](const char* syscall, int fd) {
    int err = errno;
    Close(fd);
    if (op.beneath) Close(op.rootfd);
    ThrowOsError(env, syscall, err);
    return env.Undefined();
  };
  auto result = [&](int fd, const struct stat& st, bool isDirect) {
    if (op.beneath) Close(op.rootfd);
    Napi::Object r = Napi::Object::New(env);
    r.Set("fd", fd);
    r.Set("kind", Kind(st));
    r.Set("nlink", static_cast<double>(st.st_nlink));
    r.Set("direct", isDirect);
    r.Set("resolve", !op.beneath ? "path" : op.walk ? "walk" : "openat2");
    return r;
  };

  // Probe: O_PATH runs no driver open and never waits for a FIFO's other end.
  int probe = op.Open(O_PATH);
  if (probe < 0) return fail(op.beneath && !op.walk ? "openat2" : "open", -1);
  struct stat st;
  if (fstat(probe, &st) < 0) return fail("fstat", probe);
  Close(probe);
  if (!Served(st)) return result(-1, st, false);

  int fd = op.Open((write ? O_RDWR : O_RDONLY) | O_NONBLOCK);
  if (fd < 0) return fail(op.beneath && !op.walk ? "openat2" : "open", -1);
  // The fd is what counts: the name may have been swapped since the probe.
  if (fstat(fd, &st) < 0) return fail("fstat", fd);
  if (!Served(st)) return result(Close(fd), st, false);
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return fail("fcntl", fd);
  fl &= ~O_NONBLOCK;
  bool isDirect = false;
  if (direct && fcntl(fd, F_SETFL, fl | O_DIRECT) == 0) {
    isDirect = true;
  } else {
    if (direct && errno != EINVAL) return fail("fcntl(O_DIRECT)", fd);
    if (fcntl(fd, F_SETFL, fl) < 0) return fail("fcntl", fd);
  }
  return result(fd, st, isDirect);
}

}  // namespace aionbd
