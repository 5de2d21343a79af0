#include "constants.h"

#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <linux/io_uring.h>
#include <linux/nbd-netlink.h>
#include <linux/nbd.h>

#include <cstdint>

#include "aio_engine.h"
#include "file_ops.h"
#include "nbd_attach.h"
#include "nbd_netlink.h"
#include "rbd_ops.h"
#include "sock_io.h"
#include "uring_engine.h"

namespace aionbd {

namespace {

Napi::Object Group(Napi::Env env, std::initializer_list<std::pair<const char*, uint32_t>> values) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [name, value] : values) o.Set(name, value);
  return o;
}

}  // namespace

Napi::Object SlotLayoutObject(Napi::Env env, const SlotLayout& l) {
  Napi::Object o = Napi::Object::New(env);
#define AIONBD_SLOT_SET(name, type) o.Set(#name, l.name);
  AIONBD_SLOT_COLUMNS(AIONBD_SLOT_SET)
#undef AIONBD_SLOT_SET
  o.Set("size", l.size);
  return o;
}

Napi::Object ConstantsObject(Napi::Env env) {
  Napi::Object k = Napi::Object::New(env);
  // Kernel ABI, from the headers we build against (the slot table's op and rwFlags for AIO), and
  // the most events one kernel AIO context of the engine holds.
  k.Set("aio", Group(env, {
                              {"IOCB_CMD_PREAD", IOCB_CMD_PREAD},
                              {"IOCB_CMD_PWRITE", IOCB_CMD_PWRITE},
                              {"IOCB_CMD_FSYNC", IOCB_CMD_FSYNC},
                              {"IOCB_CMD_FDSYNC", IOCB_CMD_FDSYNC},
                              {"RWF_DSYNC", static_cast<uint32_t>(RWF_DSYNC)},
                              {"MAX_CONTEXT_EVENTS", kMaxContextEvents},
                          }));
  // The slot table's op and rwFlags for io_uring (FLUSH's rwFlags are its fsync_flags), and the
  // most entries of one ring (a uring bdev's largest queue depth).
  k.Set("uring", Group(env, {
                                {"OP_READ", IORING_OP_READ},
                                {"OP_WRITE", IORING_OP_WRITE},
                                {"OP_FSYNC", IORING_OP_FSYNC},
                                {"FSYNC_DATASYNC", IORING_FSYNC_DATASYNC},
                                {"RWF_DSYNC", static_cast<uint32_t>(RWF_DSYNC)},
                                {"MAX_RING_ENTRIES", kMaxRingEntries},
                            }));
  k.Set("fileOp", Group(env, {
                                 {"PunchHole", kPunchHole},
                                 {"ZeroRange", kZeroRange},
                                 {"Discard", kDiscard},
                                 {"ZeroOut", kZeroOut},
                                 {"Fdatasync", kFdatasync},
                                 {"SeekData", kSeekData},
                                 {"SeekHole", kSeekHole},
                                 {"WriteZeroes", kWriteZeroes},
                                 {"ZeroRangeFast", kZeroRangeFast},
                                 {"PunchOrZero", kPunchOrZero},
                                 {"Allocate", kAllocate},
                             }));
  k.Set("sockEvent", Group(env, {{"Readable", kReadable}, {"Writable", kWritable}, {"Error", kError}}));
  // The bytes of one element of each column, in table order: JS views a column of 4 as a
  // Uint32Array and one of 8 as a Float64Array.
  Napi::Object columns = Napi::Object::New(env);
#define AIONBD_SLOT_WIDTH(name, type) columns.Set(#name, static_cast<uint32_t>(sizeof(type)));
  AIONBD_SLOT_COLUMNS(AIONBD_SLOT_WIDTH)
#undef AIONBD_SLOT_WIDTH
  Napi::Object slot = Napi::Object::New(env);
  slot.Set("columns", columns);
  k.Set("slot", slot);
  k.Set("nbd", Group(env, {
                              {"CMD_LINK_DEAD", NBD_CMD_LINK_DEAD},
                              {"CFLAG_DESTROY_ON_DISCONNECT", NBD_CFLAG_DESTROY_ON_DISCONNECT},
                              {"CFLAG_DISCONNECT_ON_CLOSE", NBD_CFLAG_DISCONNECT_ON_CLOSE},
                              {"EVENTS_LOST", kNbdEventsLost},
                              {"NO_INDEX", nbdnl::kNoIndex},
                          }));
  // The op column and rwFlags bits of an RBD image's table; present in builds without RBD too.
  k.Set("rbd", Group(env, {
                              {"READ", kRbdRead},
                              {"WRITE", kRbdWrite},
                              {"FLUSH", kRbdFlush},
                              {"DISCARD", kRbdDiscard},
                              {"WRITE_ZEROES", kRbdWriteZeroes},
                              {"FUA", kRbdFua},
                              {"NO_HOLE", kRbdNoHole},
                          }));
  return k;
}

}  // namespace aionbd
