// The server side of the TLS handshake after STARTTLS, and the judgement of who may pass: a
// client certificate the CA verified (--tls-ca) or a PSK identity whose key the client proved.
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { createServer, type TLSSocket } from 'node:tls';
import type { TlsSettings } from './handshake.js';

/** The TLS handshake failed, or finished with a client that is not allowed in. */
export class TlsRefused extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'TlsRefused';
  }
}

export interface TlsPeer {
  socket: TLSSocket;
  /** How the client proved who it is, for the log: "psk:alice", "cert:CN=...", or "anonymous" (no --tls-ca). */
  client: string;
}

// TLS 1.2 PSK suites say so in their name; in TLS 1.3 an external PSK makes the handshake a
// resumption. Each connection has its own tls.Server, hence its own ticket keys, so no ticket
// from an earlier connection can be resumed: a resumed TLS 1.3 session here is a PSK one.
function usedPsk(s: TLSSocket): boolean {
  return s.getCipher().name.includes('PSK') || (s.getProtocol() === 'TLSv1.3' && s.isSessionReused());
}

/**
 * Runs the handshake on `sock` and resolves with the TLS socket once the client is judged
 * allowed; otherwise destroys it and rejects with TlsRefused saying why.
 */
export function acceptTls(sock: Duplex, tls: TlsSettings): Promise<TlsPeer> {
  const psk = tls.psk;
  let identity: string | null = null;
  let unknownIdentity: string | null = null;
  // A tls.Server, not a bare TLSSocket: only the server path sets `authorized` and
  // `authorizationError` (a bare server-side TLSSocket ignores rejectUnauthorized). The
  // certificate is judged below rather than by rejectUnauthorized, so a refusal is logged with
  // its reason and a PSK client is not asked for a certificate it cannot have.
  const server = createServer({
    ...tls.options,
    requestCert: tls.verifyClient,
    rejectUnauthorized: false,
    handshakeTimeout: 0, // the NBD server's own handshake timer covers the whole negotiation
    ...(psk !== null
      ? {
          pskCallback: (_s: TLSSocket, id: string) => {
            const key = psk.get(id);
            if (key !== undefined) {
              identity = id;
              return key;
            }
            // A random key fails the handshake like a wrong one: an unknown identity is not revealed.
            unknownIdentity = id;
            return randomBytes(32);
          },
        }
      : {}),
  });
  return new Promise<TlsPeer>((resolve, reject) => {
    server.once('tlsClientError', (err: Error) => {
      const why = unknownIdentity !== null ? `unknown PSK identity "${unknownIdentity}"` : (err.message.split('\n')[0] ?? 'error');
      reject(new TlsRefused(`TLS handshake failed: ${why}`));
    });
    server.once('secureConnection', (s: TLSSocket) => {
      s.allowHalfOpen = halfOpen;
      const refuse = (why: string): void => {
        s.destroy();
        reject(new TlsRefused(why));
      };
      if (identity !== null && usedPsk(s)) {
        resolve({ socket: s, client: `psk:${identity}` });
        return;
      }
      if (psk !== null && !tls.verifyClient) {
        refuse('no PSK identity was proved');
        return;
      }
      if (!tls.verifyClient) {
        resolve({ socket: s, client: 'anonymous' });
        return;
      }
      const cert = s.getPeerCertificate();
      if (Object.keys(cert).length === 0) {
        refuse('no client certificate (--tls-ca requires one signed by the CA)');
        return;
      }
      const subject = `CN=${cert.subject.CN ?? '?'}`;
      if (!s.authorized) {
        refuse(`client certificate refused: ${String(s.authorizationError)} (${subject})`);
        return;
      }
      resolve({ socket: s, client: `cert:${subject}` });
    });
    // The TLS socket takes allowHalfOpen from `sock`. Half-open, a client's end of stream in the
    // middle of the TLS handshake closes nothing, and the tls.Server only gives up on a close:
    // the connection would sit until the handshake timer. So it is off until the client is in,
    // then back as the transmission phase wants it (replies still go out after the client's FIN).
    const halfOpen = sock.allowHalfOpen;
    sock.allowHalfOpen = false;
    server.emit('connection', sock);
    sock.allowHalfOpen = halfOpen;
  });
}
