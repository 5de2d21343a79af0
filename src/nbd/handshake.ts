// Fixed-newstyle option haggling, from the greeting to NBD_OPT_GO or NBD_OPT_EXPORT_NAME.
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import { ByteReader } from './byte_reader.js';
import {
  MAX_OPTION_LEN, MAX_OPTIONS, MAX_STRING_LEN, NBD_FLAG_C_FIXED_NEWSTYLE, NBD_FLAG_C_NO_ZEROES, NBD_IHAVEOPT, NBD_INFO,
  NBD_OPT, NBD_REP, OPTION_HEADER_LEN,
} from './constants.js';
import type { Export } from './export.js';
import {
  encodeExportNameReply, encodeGreeting, encodeInfoBlockSize, encodeInfoExport, encodeInfoString, encodeOptionReply,
  encodeServerEntry,
} from './wire.js';

export interface HandshakeHost {
  /** The export of that name; '' is the default export. */
  lookup(name: string): Export | undefined;
  exports(): Iterable<Export>;
  readonly maxPayload: number;
  closing(): boolean;
}

export interface Negotiated {
  export: Export;
  /** Bytes the client sent after the handshake (its first requests). */
  leftover: Buffer | null;
}

/** The client broke the protocol; the connection is closed without a reply. */
export class HandshakeViolation extends Error {
  constructor(reason: string) { super(reason); this.name = 'HandshakeViolation'; }
}

/** The client ended the handshake itself (NBD_OPT_ABORT). */
export class HandshakeAborted extends Error {
  constructor() { super('client sent NBD_OPT_ABORT'); this.name = 'HandshakeAborted'; }
}

function write(sock: Duplex, b: Buffer): void { sock.write(b); }

/** Runs the handshake; resolves when transmission may start, rejects when the connection must close. */
export async function negotiate(sock: Duplex, host: HandshakeHost, log: Logger): Promise<Negotiated> {
  const reader = new ByteReader(sock);
  try {
    write(sock, encodeGreeting());
    const clientFlags = (await reader.read(4)).readUInt32BE(0);
    if ((clientFlags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) !== 0) {
      throw new HandshakeViolation(`unknown client flags 0x${clientFlags.toString(16)}`);
    }
    const noZeroes = (clientFlags & NBD_FLAG_C_NO_ZEROES) !== 0;
    for (let n = 0; n < MAX_OPTIONS; n++) {
      const h = await reader.read(OPTION_HEADER_LEN);
      if (h.readBigUInt64BE(0) !== NBD_IHAVEOPT) throw new HandshakeViolation('bad option magic');
      const opt = h.readUInt32BE(8);
      const len = h.readUInt32BE(12);
      // Checked before reading: a hostile length must not make us buffer gigabytes.
      if (len > MAX_OPTION_LEN) throw new HandshakeViolation(`option ${opt} of ${len} bytes exceeds ${MAX_OPTION_LEN}`);
      const data = len > 0 ? await reader.read(len) : Buffer.alloc(0);
      log.debug({ opt, len }, 'option');
      const reply = (type: number, payload?: Buffer): void => write(sock, encodeOptionReply(opt, type, payload));
      const error = (type: number, msg: string): void => reply(type, Buffer.from(msg, 'utf8'));

      if (host.closing() && opt !== NBD_OPT.ABORT) {
        if (opt === NBD_OPT.EXPORT_NAME) throw new HandshakeViolation('server shutting down');
        error(NBD_REP.ERR_SHUTDOWN, 'server is shutting down');
        continue;
      }
      switch (opt) {
        case NBD_OPT.EXPORT_NAME: {
          const name = data.toString('utf8');
          const x = host.lookup(name);
          if (x === undefined) throw new HandshakeViolation(`EXPORT_NAME for unknown export "${name}"`);
          write(sock, encodeExportNameReply(x.size, x.flags, noZeroes));
          return { export: x, leftover: reader.detach() };
        }
        case NBD_OPT.ABORT:
          reply(NBD_REP.ACK);
          throw new HandshakeAborted();
        case NBD_OPT.LIST:
          if (len !== 0) { error(NBD_REP.ERR_INVALID, 'NBD_OPT_LIST takes no data'); break; }
          for (const x of host.exports()) reply(NBD_REP.SERVER, encodeServerEntry(x.name, x.description));
          reply(NBD_REP.ACK);
          break;
        case NBD_OPT.INFO:
        case NBD_OPT.GO: {
          const x = infoOrGo(data, host, reply, error);
          if (x !== undefined && opt === NBD_OPT.GO) return { export: x, leftover: reader.detach() };
          break;
        }
        case NBD_OPT.STARTTLS:
          if (len !== 0) error(NBD_REP.ERR_INVALID, 'NBD_OPT_STARTTLS takes no data');
          else error(NBD_REP.ERR_POLICY, 'TLS is not configured on this server');
          break;
        case NBD_OPT.STRUCTURED_REPLY:
          if (len !== 0) error(NBD_REP.ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
          else error(NBD_REP.ERR_UNSUP, 'structured replies are not supported yet');
          break;
        default:
          error(NBD_REP.ERR_UNSUP, `option ${opt} is not supported`);
          break;
      }
    }
    throw new HandshakeViolation(`more than ${MAX_OPTIONS} options`);
  } catch (err) {
    reader.detach();
    throw err;
  }
}

// Parses INFO/GO data and answers it; returns the export when the answer was ACK.
function infoOrGo(
  data: Buffer, host: HandshakeHost,
  reply: (type: number, payload?: Buffer) => void, error: (type: number, msg: string) => void,
): Export | undefined {
  if (data.length < 6) { error(NBD_REP.ERR_INVALID, 'option too short'); return undefined; }
  const nameLen = data.readUInt32BE(0);
  if (nameLen > data.length - 6) { error(NBD_REP.ERR_INVALID, 'export name length exceeds the option'); return undefined; }
  if (nameLen > MAX_STRING_LEN) { error(NBD_REP.ERR_INVALID, 'export name too long'); return undefined; }
  const name = data.toString('utf8', 4, 4 + nameLen);
  const count = data.readUInt16BE(4 + nameLen);
  if (data.length !== 4 + nameLen + 2 + 2 * count) { error(NBD_REP.ERR_INVALID, 'information request count does not match the option length'); return undefined; }
  const wanted = new Set<number>();
  for (let i = 0; i < count; i++) wanted.add(data.readUInt16BE(4 + nameLen + 2 + 2 * i));
  const x = host.lookup(name);
  if (x === undefined) { error(NBD_REP.ERR_UNKNOWN, `unknown export "${name}"`); return undefined; }
  reply(NBD_REP.INFO, encodeInfoExport(x.size, x.flags));
  if (wanted.has(NBD_INFO.NAME)) reply(NBD_REP.INFO, encodeInfoString(NBD_INFO.NAME, x.name));
  if (wanted.has(NBD_INFO.DESCRIPTION) && x.description !== '') reply(NBD_REP.INFO, encodeInfoString(NBD_INFO.DESCRIPTION, x.description));
  if (wanted.has(NBD_INFO.BLOCK_SIZE)) reply(NBD_REP.INFO, encodeInfoBlockSize(x.minBlock, x.preferredBlock, host.maxPayload));
  reply(NBD_REP.ACK);
  return x;
}
