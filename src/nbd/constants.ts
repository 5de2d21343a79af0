// Every NBD protocol number, once, under the names of the NBD protocol specification (doc/proto.md
// of NetworkBlockDevice/nbd), where their meanings are defined.

export const NBD_MAGIC = 0x4e42444d41474943n; // "NBDMAGIC"
export const NBD_IHAVEOPT = 0x49484156454f5054n; // "IHAVEOPT": newstyle greeting and every option
export const NBD_OPT_REPLY_MAGIC = 0x0003e889045565a9n;
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_EXTENDED_REQUEST_MAGIC = 0x21e41c71;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;
export const NBD_EXTENDED_REPLY_MAGIC = 0x6e8a278c;

/** Handshake flags (server, u16). */
export const NBD_FLAG_FIXED_NEWSTYLE = 0x0001;
export const NBD_FLAG_NO_ZEROES = 0x0002;
/** Client flags (u32). */
export const NBD_FLAG_C_FIXED_NEWSTYLE = 0x00000001;
export const NBD_FLAG_C_NO_ZEROES = 0x00000002;

/** Options. */
export const NBD_OPT = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  PEEK_EXPORT: 4,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9,
  SET_META_CONTEXT: 10,
  EXTENDED_HEADERS: 11,
} as const;

/** Option reply types. */
export const NBD_REP = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  META_CONTEXT: 4,
  ERR_UNSUP: 0x80000001,
  ERR_POLICY: 0x80000002,
  ERR_INVALID: 0x80000003,
  ERR_PLATFORM: 0x80000004,
  ERR_TLS_REQD: 0x80000005,
  ERR_UNKNOWN: 0x80000006,
  ERR_SHUTDOWN: 0x80000007,
  ERR_BLOCK_SIZE_REQD: 0x80000008,
  ERR_TOO_BIG: 0x80000009,
  ERR_EXT_HEADER_REQD: 0x8000000a,
} as const;

/** Info types in NBD_REP_INFO. */
export const NBD_INFO = { EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3 } as const;

/** Transmission flags (u16). */
export const NBD_FLAG_HAS_FLAGS = 0x0001;
export const NBD_FLAG_READ_ONLY = 0x0002;
export const NBD_FLAG_SEND_FLUSH = 0x0004;
export const NBD_FLAG_SEND_FUA = 0x0008;
export const NBD_FLAG_ROTATIONAL = 0x0010;
export const NBD_FLAG_SEND_TRIM = 0x0020;
export const NBD_FLAG_SEND_WRITE_ZEROES = 0x0040;
export const NBD_FLAG_SEND_DF = 0x0080;
export const NBD_FLAG_CAN_MULTI_CONN = 0x0100;
export const NBD_FLAG_SEND_RESIZE = 0x0200;
export const NBD_FLAG_SEND_CACHE = 0x0400;
export const NBD_FLAG_SEND_FAST_ZERO = 0x0800;

/** Commands. */
export const NBD_CMD = {
  READ: 0,
  WRITE: 1,
  DISC: 2,
  FLUSH: 3,
  TRIM: 4,
  CACHE: 5,
  WRITE_ZEROES: 6,
  BLOCK_STATUS: 7,
  RESIZE: 8,
} as const;
export const NBD_CMD_NAME: Record<number, string> = Object.fromEntries(Object.entries(NBD_CMD).map(([k, v]) => [v, k]));

/** Command flags (u16). */
export const NBD_CMD_FLAG_FUA = 0x0001;
export const NBD_CMD_FLAG_NO_HOLE = 0x0002;
export const NBD_CMD_FLAG_DF = 0x0004;
export const NBD_CMD_FLAG_REQ_ONE = 0x0008;
export const NBD_CMD_FLAG_FAST_ZERO = 0x0010;
export const NBD_CMD_FLAG_PAYLOAD_LEN = 0x0020;

/** Error values allowed on the wire. */
export const NBD_ERR = {
  SUCCESS: 0,
  EPERM: 1,
  EIO: 5,
  ENOMEM: 12,
  EINVAL: 22,
  ENOSPC: 28,
  EOVERFLOW: 75,
  ENOTSUP: 95,
  ESHUTDOWN: 108,
} as const;

/** Sizes of fixed wire structures. */
export const GREETING_LEN = 18;
export const OPTION_HEADER_LEN = 16;
export const OPTION_REPLY_HEADER_LEN = 20;
export const REQUEST_LEN = 28;
export const SIMPLE_REPLY_LEN = 16;
export const EXPORT_NAME_ZEROES = 124;

/** Our limits. */
/**
 * 2^26: what every client may send in one READ or WRITE. Clients that negotiate no block sizes
 * send up to about 48 MiB (libnbd-based tools); nbdkit and nbd-server take those, so we do too.
 * Memory is not the limit: a request is carried out in IO_CHUNK pieces, charged to the budget.
 */
export const DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024;
export const DEFAULT_PREFERRED_BLOCK = 4096;
export const MAX_OPTION_LEN = 64 * 1024; // real clients send < 16 KiB
export const MAX_STRING_LEN = 4096;
export const MAX_OPTIONS = 1024; // options per handshake before we give up on a client
export const MAX_OPTIONS_PER_EXPORT = 4; // and more for a client asking about every export (nbdinfo --list sends 2 each)
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_PORT = 10809;

/** Structured / extended reply chunk types and flags. */
export const NBD_REPLY_FLAG_DONE = 0x0001;
export const NBD_REPLY_TYPE = {
  NONE: 0,
  OFFSET_DATA: 1,
  OFFSET_HOLE: 2,
  BLOCK_STATUS: 5,
  BLOCK_STATUS_EXT: 6,
  ERROR: 32769,
  ERROR_OFFSET: 32770,
} as const;
export const STRUCTURED_REPLY_HEADER_LEN = 20;
export const EXTENDED_REPLY_HEADER_LEN = 32;
export const EXTENDED_REQUEST_LEN = 32;

/** The metadata contexts we offer, with the ids SET_META_CONTEXT gives them, and their status values. */
export const META_BASE_ALLOCATION = 'base:allocation';
export const META_ID_BASE_ALLOCATION = 1;
/** qemu-nbd's: 0 unallocated, 1 in this volume, 2 and up in a backing snapshot that deep. Only where the bdev knows. */
export const META_QEMU_ALLOCATION_DEPTH = 'qemu:allocation-depth';
export const META_ID_QEMU_ALLOCATION_DEPTH = 2;
export const NBD_STATE_HOLE = 1;
export const NBD_STATE_ZERO = 2;
/** Extents in one BLOCK_STATUS reply, at most (the spec allows 2^20; clients loop for more). */
export const MAX_EXTENTS = 1024;
