// TLS settings for STARTTLS: X.509 (certificate, key, optional CA to verify clients) and/or
// PSK (a file of "identity:hexkey" lines, as nbdkit and qemu-nbd read, made by psktool).
import fs from 'node:fs';
import { createSecureContext } from 'node:tls';
import { UsageError } from '../errors.js';
import type { TlsMode, TlsSettings } from './handshake.js';

export interface TlsFiles {
  mode?: TlsMode | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  ca?: string | undefined;
  psk?: string | undefined;
}

function read(path: string, what: string): Buffer {
  try { return fs.readFileSync(path); } catch (err) {
    throw new UsageError(`cannot read the TLS ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function parsePskFile(text: string, path = 'PSK file'): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.lastIndexOf(':');
    const id = line.slice(0, colon);
    const hex = line.slice(colon + 1);
    if (colon <= 0 || !/^([0-9a-fA-F]{2})+$/.test(hex)) throw new UsageError(`${path} line ${i + 1}: expected identity:hexkey`);
    out.set(id, Buffer.from(hex, 'hex'));
  }
  if (out.size === 0) throw new UsageError(`${path} holds no identity:hexkey line`);
  return out;
}

/** Null when TLS is off; otherwise what the handshake needs. Unreadable or bad files are usage errors. */
export function loadTls(f: TlsFiles): TlsSettings | null {
  const haveX509 = f.cert !== undefined || f.key !== undefined;
  const mode: TlsMode = f.mode ?? (haveX509 || f.psk !== undefined ? 'require' : 'off');
  if (mode === 'off') return null;
  if (!haveX509 && f.psk === undefined) throw new UsageError(`--tls ${mode} needs --tls-cert and --tls-key, or --tls-psk`);
  if (haveX509 && (f.cert === undefined || f.key === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (f.ca !== undefined && !haveX509) throw new UsageError('--tls-ca (client verification) needs --tls-cert and --tls-key');
  const psk = f.psk !== undefined ? parsePskFile(read(f.psk, 'PSK file').toString('utf8'), f.psk) : null;
  const cert = haveX509 ? { cert: read(f.cert as string, 'certificate'), key: read(f.key as string, 'key') } : {};
  const ca = f.ca !== undefined ? { ca: read(f.ca, 'CA certificate') } : {};
  try {
    const context = createSecureContext({
      ...cert,
      ...ca,
      // PSK suites are off by default in OpenSSL; add them next to the defaults when a PSK file is given.
      ...(psk !== null ? { ciphers: haveX509 ? 'DEFAULT:PSK' : 'PSK' } : {}),
      minVersion: 'TLSv1.2',
    });
    return { mode, context, verifyClient: f.ca !== undefined, psk };
  } catch (err) {
    throw new UsageError(`bad TLS credentials: ${(err as Error).message}`);
  }
}
