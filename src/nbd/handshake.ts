// Fixed-newstyle option haggling, from the greeting to NBD_OPT_GO or NBD_OPT_EXPORT_NAME,
// including STARTTLS (the socket is replaced by its TLS wrapping) and metadata contexts.
import type { Duplex } from 'node:stream';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from '../log.js';
import { ByteReader } from './byte_reader.js';
import {
  MAX_OPTION_LEN,
  MAX_OPTIONS,
  MAX_OPTIONS_PER_EXPORT,
  MAX_STRING_LEN,
  META_BASE_ALLOCATION,
  META_ID_BASE_ALLOCATION,
  META_ID_QEMU_ALLOCATION_DEPTH,
  META_QEMU_ALLOCATION_DEPTH,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_IHAVEOPT,
  NBD_INFO,
  NBD_OPT,
  NBD_REP,
  OPTION_HEADER_LEN,
} from './constants.js';
import type { Export } from './export.js';
import { ReplyStyle } from './replies.js';
import { TlsRefused, acceptTls, type TlsPeer } from './tls_accept.js';
import {
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoString,
  encodeOptionReply,
  encodeServerEntry,
} from './wire.js';

export type TlsMode = 'off' | 'on' | 'require';

export interface TlsSettings {
  mode: TlsMode;
  /** Certificate, key, CA and ciphers, checked at start; each STARTTLS makes its context from them. */
  options: SecureContextOptions;
  /** Clients must prove a certificate signed by the CA (--tls-ca), or a PSK identity when there are both. */
  verifyClient: boolean;
  /** PSK identities and keys (--tls-psk): each is a credential of its own. */
  psk: Map<string, Buffer> | null;
}

export interface HandshakeHost {
  /** The export of that name; '' is the default export. */
  lookup(name: string): Export | undefined;
  exports(): Iterable<Export>;
  readonly maxPayload: number;
  closing(): boolean;
  readonly tls: TlsSettings | null;
  /** Offer NBD_OPT_EXTENDED_HEADERS. */
  readonly extendedHeaders: boolean;
}

export interface Negotiated {
  export: Export;
  /** The socket transmission runs on (a TLSSocket after STARTTLS). */
  socket: Duplex;
  style: ReplyStyle;
  /** Ids of the contexts the last SET_META_CONTEXT selected for this export (none: no BLOCK_STATUS). */
  metaContexts: readonly number[];
  tls: boolean;
  /** Bytes the client sent after the handshake (its first requests). */
  leftover: Buffer | null;
}

/** The client broke the protocol; the connection is closed without a reply. */
export class HandshakeViolation extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'HandshakeViolation';
  }
}

/** The client ended the handshake itself (NBD_OPT_ABORT). */
export class HandshakeAborted extends Error {
  constructor() {
    super('client sent NBD_OPT_ABORT');
    this.name = 'HandshakeAborted';
  }
}

interface State {
  sock: Duplex;
  reader: ByteReader;
  tls: boolean;
  structured: boolean;
  extended: boolean;
  /** What the last SET_META_CONTEXT selected, for which export; null when nothing. */
  meta: { export: string; ids: number[] } | null;
}

/** Runs the handshake; resolves when transmission may start, rejects when the connection must close. */
export async function negotiate(sock: Duplex, host: HandshakeHost, log: Logger): Promise<Negotiated> {
  const st: State = { sock, reader: new ByteReader(sock), tls: false, structured: false, extended: false, meta: null };
  try {
    sock.write(encodeGreeting());
    const clientFlags = (await st.reader.read(4)).readUInt32BE(0);
    if ((clientFlags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) !== 0) {
      throw new HandshakeViolation(`unknown client flags 0x${clientFlags.toString(16)}`);
    }
    const noZeroes = (clientFlags & NBD_FLAG_C_NO_ZEROES) !== 0;
    let limit = MAX_OPTIONS;
    for (let n = 0; ; n++) {
      if (n === limit) {
        // Counted only past the base cap, so a server with many exports costs the usual client nothing.
        let exports = 0;
        for (const _ of host.exports()) exports++;
        limit = Math.max(limit, MAX_OPTIONS + MAX_OPTIONS_PER_EXPORT * exports);
        if (n === limit) throw new HandshakeViolation(`more than ${limit} options`);
      }
      const h = await st.reader.read(OPTION_HEADER_LEN);
      if (h.readBigUInt64BE(0) !== NBD_IHAVEOPT) throw new HandshakeViolation('bad option magic');
      const opt = h.readUInt32BE(8);
      const len = h.readUInt32BE(12);
      // Checked before reading: a hostile length must not make us buffer gigabytes.
      if (len > MAX_OPTION_LEN) throw new HandshakeViolation(`option ${opt} of ${len} bytes exceeds ${MAX_OPTION_LEN}`);
      const data = len > 0 ? await st.reader.read(len) : Buffer.alloc(0);
      log.debug({ opt, len }, 'option');
      const out = st.sock;
      const reply = (type: number, payload?: Buffer): void => {
        out.write(encodeOptionReply(opt, type, payload));
      };
      const error = (type: number, msg: string): void => reply(type, Buffer.from(msg, 'utf8'));
      const done = (x: Export): Negotiated => ({
        export: x,
        socket: st.sock,
        tls: st.tls,
        leftover: st.reader.detach(),
        style: st.extended ? ReplyStyle.Extended : st.structured ? ReplyStyle.Structured : ReplyStyle.Simple,
        metaContexts: st.structured && st.meta !== null && st.meta.export === x.name ? st.meta.ids : [],
      });

      if (host.closing() && opt !== NBD_OPT.ABORT) {
        if (opt === NBD_OPT.EXPORT_NAME) throw new HandshakeViolation('server shutting down');
        error(NBD_REP.ERR_SHUTDOWN, 'server is shutting down');
        continue;
      }
      if (host.tls?.mode === 'require' && !st.tls && opt !== NBD_OPT.STARTTLS && opt !== NBD_OPT.ABORT) {
        if (opt === NBD_OPT.EXPORT_NAME) throw new HandshakeViolation('EXPORT_NAME before STARTTLS on a TLS-only server');
        error(NBD_REP.ERR_TLS_REQD, 'this server requires TLS: send NBD_OPT_STARTTLS first');
        continue;
      }
      switch (opt) {
        case NBD_OPT.EXPORT_NAME: {
          if (st.extended) throw new HandshakeViolation('EXPORT_NAME after extended headers');
          const name = data.toString('utf8');
          const x = host.lookup(name);
          if (x === undefined) throw new HandshakeViolation(`EXPORT_NAME for unknown export "${name}"`);
          out.write(encodeExportNameReply(x.size, x.flagsFor(st.structured), noZeroes));
          return done(x);
        }
        case NBD_OPT.ABORT:
          reply(NBD_REP.ACK);
          throw new HandshakeAborted();
        case NBD_OPT.LIST:
          if (len !== 0) {
            error(NBD_REP.ERR_INVALID, 'NBD_OPT_LIST takes no data');
            break;
          }
          for (const x of host.exports()) reply(NBD_REP.SERVER, encodeServerEntry(x.name, x.description));
          reply(NBD_REP.ACK);
          break;
        case NBD_OPT.INFO:
        case NBD_OPT.GO: {
          const x = infoOrGo(data, host, st.structured, reply, error);
          if (x !== undefined && opt === NBD_OPT.GO) return done(x);
          break;
        }
        case NBD_OPT.STARTTLS:
          if (len !== 0) error(NBD_REP.ERR_INVALID, 'NBD_OPT_STARTTLS takes no data');
          else if (host.tls === null || host.tls.mode === 'off') error(NBD_REP.ERR_POLICY, 'TLS is not configured on this server');
          else if (st.tls) error(NBD_REP.ERR_INVALID, 'TLS is already on');
          else {
            reply(NBD_REP.ACK);
            await startTls(st, host.tls, log);
          }
          break;
        case NBD_OPT.STRUCTURED_REPLY:
          if (len !== 0) error(NBD_REP.ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
          else if (st.extended) error(NBD_REP.ERR_EXT_HEADER_REQD, 'extended headers already imply structured replies');
          else {
            st.structured = true;
            reply(NBD_REP.ACK);
          }
          break;
        case NBD_OPT.EXTENDED_HEADERS:
          if (len !== 0) error(NBD_REP.ERR_INVALID, 'NBD_OPT_EXTENDED_HEADERS takes no data');
          else if (!host.extendedHeaders) error(NBD_REP.ERR_UNSUP, 'extended headers are turned off on this server');
          else {
            st.extended = true;
            st.structured = true;
            reply(NBD_REP.ACK);
          }
          break;
        case NBD_OPT.LIST_META_CONTEXT:
        case NBD_OPT.SET_META_CONTEXT:
          metaContext(opt, data, host, st, reply, error);
          break;
        default:
          error(NBD_REP.ERR_UNSUP, `option ${opt} is not supported`);
          break;
      }
    }
  } catch (err) {
    st.reader.detach();
    throw err;
  }
}

// After STARTTLS's ACK everything is TLS: wrap the socket, forget what was negotiated in clear.
async function startTls(st: State, tls: TlsSettings, log: Logger): Promise<void> {
  const early = st.reader.detach();
  if (early !== null) throw new HandshakeViolation('data after STARTTLS before the TLS handshake');
  let peer: TlsPeer;
  try {
    peer = await acceptTls(st.sock, tls);
  } catch (err) {
    throw new HandshakeViolation(err instanceof TlsRefused ? err.message : `TLS handshake failed: ${(err as Error).message}`);
  }
  const secure = peer.socket;
  log.debug({ protocol: secure.getProtocol(), cipher: secure.getCipher().name, client: peer.client }, 'TLS on');
  st.sock = secure;
  st.reader = new ByteReader(secure);
  st.tls = true;
  st.structured = false;
  st.extended = false;
  st.meta = null;
}

// Parses INFO/GO data and answers it; returns the export when the answer was ACK.
function infoOrGo(
  data: Buffer,
  host: HandshakeHost,
  structured: boolean,
  reply: (type: number, payload?: Buffer) => void,
  error: (type: number, msg: string) => void,
): Export | undefined {
  if (data.length < 6) {
    error(NBD_REP.ERR_INVALID, 'option too short');
    return undefined;
  }
  const nameLen = data.readUInt32BE(0);
  if (nameLen > data.length - 6) {
    error(NBD_REP.ERR_INVALID, 'export name length exceeds the option');
    return undefined;
  }
  if (nameLen > MAX_STRING_LEN) {
    error(NBD_REP.ERR_INVALID, 'export name too long');
    return undefined;
  }
  const name = data.toString('utf8', 4, 4 + nameLen);
  const count = data.readUInt16BE(4 + nameLen);
  if (data.length !== 4 + nameLen + 2 + 2 * count) {
    error(NBD_REP.ERR_INVALID, 'information request count does not match the option length');
    return undefined;
  }
  const wanted = new Set<number>();
  for (let i = 0; i < count; i++) wanted.add(data.readUInt16BE(4 + nameLen + 2 + 2 * i));
  const x = host.lookup(name);
  if (x === undefined) {
    error(NBD_REP.ERR_UNKNOWN, `unknown export "${name}"`);
    return undefined;
  }
  reply(NBD_REP.INFO, encodeInfoExport(x.size, x.flagsFor(structured)));
  if (wanted.has(NBD_INFO.NAME)) reply(NBD_REP.INFO, encodeInfoString(NBD_INFO.NAME, x.name));
  if (wanted.has(NBD_INFO.DESCRIPTION) && x.description !== '') reply(NBD_REP.INFO, encodeInfoString(NBD_INFO.DESCRIPTION, x.description));
  if (wanted.has(NBD_INFO.BLOCK_SIZE)) reply(NBD_REP.INFO, encodeInfoBlockSize(x.minBlock, x.preferredBlock, host.maxPayload));
  reply(NBD_REP.ACK);
  return x;
}

const MAX_META_QUERIES = 128;

/** The id SET_META_CONTEXT gives each context we offer. */
const META_IDS: Readonly<Record<string, number>> = {
  [META_BASE_ALLOCATION]: META_ID_BASE_ALLOCATION,
  [META_QEMU_ALLOCATION_DEPTH]: META_ID_QEMU_ALLOCATION_DEPTH,
};

// LIST_META_CONTEXT and SET_META_CONTEXT over the contexts the export offers: base:allocation,
// and qemu:allocation-depth where the bdev knows depths (lvols).
function metaContext(
  opt: number,
  data: Buffer,
  host: HandshakeHost,
  st: State,
  reply: (type: number, payload?: Buffer) => void,
  error: (type: number, msg: string) => void,
): void {
  const set = opt === NBD_OPT.SET_META_CONTEXT;
  // A SET replaces the selection even when it fails.
  if (set) st.meta = null;
  if (!st.structured) {
    error(NBD_REP.ERR_INVALID, 'metadata contexts need structured replies first');
    return;
  }
  const q = parseMetaQueries(data);
  if (typeof q === 'string') {
    error(q === 'too many queries' ? NBD_REP.ERR_TOO_BIG : NBD_REP.ERR_INVALID, q);
    return;
  }
  const x = host.lookup(q.name);
  if (x === undefined) {
    error(NBD_REP.ERR_UNKNOWN, `unknown export "${q.name}"`);
    return;
  }
  // SET selects exact names only. LIST also takes no query (everything) and "namespace:" (all of
  // that namespace), as the spec asks for "base:" and qemu-nbd does for "qemu:".
  const matches = (name: string): boolean => q.queries.some((w) => w === name || (!set && w.endsWith(':') && name.startsWith(w)));
  const names = !set && q.queries.length === 0 ? [...x.metaContexts] : x.metaContexts.filter(matches);
  const ids: number[] = [];
  for (const name of names) {
    const id = set ? (META_IDS[name] as number) : 0;
    const b = Buffer.alloc(4 + Buffer.byteLength(name));
    b.writeUInt32BE(id, 0);
    b.write(name, 4);
    reply(NBD_REP.META_CONTEXT, b);
    ids.push(id);
  }
  if (set && ids.length > 0) st.meta = { export: x.name, ids };
  reply(NBD_REP.ACK);
}

function parseMetaQueries(data: Buffer): { name: string; queries: string[] } | string {
  if (data.length < 8) return 'option too short';
  const nameLen = data.readUInt32BE(0);
  if (nameLen > data.length - 8) return 'export name length exceeds the option';
  if (nameLen > MAX_STRING_LEN) return 'export name too long';
  const name = data.toString('utf8', 4, 4 + nameLen);
  const n = data.readUInt32BE(4 + nameLen);
  if (n > MAX_META_QUERIES) return 'too many queries';
  const queries: string[] = [];
  let pos = 8 + nameLen;
  for (let i = 0; i < n; i++) {
    if (data.length - pos < 4) return 'query length runs past the option';
    const ql = data.readUInt32BE(pos);
    pos += 4;
    if (ql > data.length - pos) return 'query runs past the option';
    if (ql > MAX_STRING_LEN) return 'query too long';
    queries.push(data.toString('utf8', pos, pos + ql));
    pos += ql;
  }
  if (pos !== data.length) return 'trailing bytes after the queries';
  return { name, queries };
}
