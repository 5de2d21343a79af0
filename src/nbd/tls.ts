// TLS settings for STARTTLS: X.509 (certificate, key, optional CA to verify clients) and/or
// PSK (a file of "identity:hexkey" lines, as nbdkit and qemu-nbd read, made by psktool).
// Everything is checked here, at start: a setting that cannot be honoured is a usage error,
// never a quieter mode than the one asked for.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { UsageError } from '../errors.js';
import type { TlsMode, TlsSettings } from './handshake.js';
import { parsePskFile } from './psk_file.js';

export { parsePskFile } from './psk_file.js';

export interface TlsFiles {
  mode?: TlsMode | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  ca?: string | undefined;
  psk?: string | undefined;
}

function read(path: string, what: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    throw new UsageError(`cannot read the TLS ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Every PEM certificate in the file, parsed; none at all is an error (Node would silently ignore the file). */
function certificates(pem: Buffer, path: string, what: string): X509Certificate[] {
  const blocks = pem.toString('latin1').match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new UsageError(`the TLS ${what} file ${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new UsageError(`the TLS ${what} file ${path}: certificate ${i + 1} cannot be parsed: ${(err as Error).message}`);
    }
  });
}

const TLS13_SHA256_FIRST = 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384';

const day = (d: Date): string => d.toISOString().slice(0, 10);

/** Why the certificate cannot be used at `now`, or null. */
function outOfDate(c: X509Certificate, now: Date): string | null {
  const from = new Date(c.validFrom);
  const to = new Date(c.validTo);
  if (now < from) return `is not valid before ${day(from)}`;
  if (now > to) return `expired on ${day(to)}`;
  return null;
}

function privateKey(pem: Buffer, path: string): KeyObject {
  const text = pem.toString('latin1');
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) {
    throw new UsageError(`the TLS key file ${path} is encrypted: aionbd needs it unencrypted (openssl pkey -in ${path} -out plain.pem)`);
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw new UsageError(`the TLS key file ${path} holds no PEM private key`);
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new UsageError(`the TLS key file ${path} cannot be used: ${(err as Error).message}`);
  }
}

/** Which of the credential flags were given, for messages. */
function flagsGiven(f: TlsFiles): string[] {
  const flags: [string | undefined, string][] = [
    [f.cert, '--tls-cert'],
    [f.key, '--tls-key'],
    [f.ca, '--tls-ca'],
    [f.psk, '--tls-psk'],
  ];
  return flags.filter(([v]) => v !== undefined).map(([, name]) => name);
}

/** The flags must describe one coherent policy; returns the mode it comes to, or null for no TLS. */
function decideMode(f: TlsFiles): TlsMode | null {
  const given = flagsGiven(f);
  if (f.mode === 'off') {
    if (given.length > 0) throw new UsageError(`--tls off contradicts ${given.join(', ')}: drop them, or drop --tls off`);
    return null;
  }
  if (f.mode === undefined && given.length === 0) return null;
  const mode = f.mode ?? 'require';
  const haveX509 = f.cert !== undefined || f.key !== undefined;
  if (haveX509 && (f.cert === undefined || f.key === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (f.ca !== undefined && !haveX509) throw new UsageError('--tls-ca (client verification) needs --tls-cert and --tls-key');
  if (!haveX509 && f.psk === undefined) throw new UsageError(`--tls ${mode} needs --tls-cert and --tls-key, or --tls-psk`);
  // With a certificate but no CA, any client completes TLS: the PSK file would keep no one out.
  if (haveX509 && f.psk !== undefined && f.ca === undefined) {
    throw new UsageError(
      '--tls-psk with --tls-cert/--tls-key also needs --tls-ca: otherwise any client gets in with neither key nor certificate',
    );
  }
  if (mode === 'on' && (f.ca !== undefined || f.psk !== undefined)) {
    throw new UsageError(
      `--tls on lets clients skip TLS, so ${f.ca !== undefined ? '--tls-ca' : '--tls-psk'} would keep no one out: use --tls require (the default)`,
    );
  }
  return mode;
}

/**
 * Null when TLS is off; otherwise what the handshake needs. Contradictory flags, unreadable or
 * unusable files, a key that is not the certificate's and a certificate outside its validity
 * are usage errors.
 */
export function loadTls(f: TlsFiles, now: Date = new Date()): TlsSettings | null {
  const mode = decideMode(f);
  if (mode === null) return null;
  const psk = f.psk !== undefined ? parsePskFile(read(f.psk, 'PSK file').toString('utf8'), f.psk) : null;
  const options: SecureContextOptions = { minVersion: 'TLSv1.2' };
  if (f.cert !== undefined && f.key !== undefined) {
    const certPem = read(f.cert, 'certificate');
    const keyPem = read(f.key, 'key');
    const chain = certificates(certPem, f.cert, 'certificate');
    for (const c of chain) {
      const why = outOfDate(c, now);
      if (why !== null) throw new UsageError(`the TLS certificate ${c.subject.replace(/\n/g, ', ')} in ${f.cert} ${why}`);
    }
    if (!(chain[0] as X509Certificate).checkPrivateKey(privateKey(keyPem, f.key))) {
      throw new UsageError(`the TLS key file ${f.key} does not match the certificate in ${f.cert}`);
    }
    options.cert = certPem;
    options.key = keyPem;
  }
  if (f.ca !== undefined) {
    const caPem = read(f.ca, 'CA certificate');
    const cas = certificates(caPem, f.ca, 'CA');
    if (cas.every((c) => outOfDate(c, now) !== null)) {
      throw new UsageError(`every certificate in the TLS CA file ${f.ca} is outside its validity: no client certificate could be verified`);
    }
    options.ca = caPem;
  }
  if (psk !== null) {
    // PSK suites are off by default in OpenSSL: add them (TLS 1.2). In TLS 1.3 OpenSSL takes a
    // PSK from the callback for SHA-256 suites only, so those come first, in our order: else a
    // client preferring AES-256-GCM-SHA384 gets a certificate handshake it has no credential for.
    options.ciphers = `${TLS13_SHA256_FIRST}:${options.cert !== undefined ? 'DEFAULT:PSK' : 'PSK'}`;
    options.honorCipherOrder = true;
  }
  try {
    // The last word on what OpenSSL accepts; the handshake builds its own context from these options.
    createSecureContext(options);
  } catch (err) {
    throw new UsageError(`bad TLS credentials: ${(err as Error).message}`);
  }
  return { mode, options, verifyClient: f.ca !== undefined, psk };
}
