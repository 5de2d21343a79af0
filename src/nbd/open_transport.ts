// Which transport carries a connection: the native one wherever the socket has a plain fd.
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { NativeTransport } from './native_transport.js';
import { StreamTransport } from './stream_transport.js';
import type { HandleWithFd, Transport, TransportHost, TransportOptions } from './transport.js';

/** The transport for `sock`: native for a plain TCP or unix socket (unless AIONBD_SOCKET=stream). */
export function openTransport(sock: Duplex, host: TransportHost, o: TransportOptions): Transport {
  const fd = nativeFd(sock);
  if (fd !== null) {
    try {
      return new NativeTransport(sock as net.Socket, fd, host, o);
    } catch (err) {
      o.log.debug({ err: (err as Error).message }, 'native socket I/O unavailable; using the stream');
    }
  }
  return new StreamTransport(sock, host, o.log, o.leftover);
}

function nativeFd(sock: Duplex): number | null {
  if (process.env['AIONBD_SOCKET'] === 'stream') return null;
  if (!(sock instanceof net.Socket) || sock instanceof tls.TLSSocket || sock.destroyed) return null;
  const h = (sock as unknown as { _handle?: HandleWithFd | null })._handle;
  if (h === null || h === undefined || typeof h.fd !== 'number' || h.fd < 0 || typeof h.readStop !== 'function') return null;
  return h.fd;
}
