// X.509 and PSK credentials for TLS tests, made with the openssl CLI in a directory: a CA with
// a server and a client certificate it signed (the names libnbd and QEMU look for), plus the
// untrusted and unusable ones an attacker or a careless operator would bring.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore', timeout: 30_000 });
}

export interface Certs {
  dir: string;
  file(name: string): string;
  /** The key of the "alice" identity in keys.psk. */
  alicePsk: Buffer;
}

/**
 * ca-cert.pem signs server-cert.pem (CN localhost) and client-cert.pem; mallory-*.pem is
 * self-signed; rogue-client-*.pem is signed by another CA (rogue-ca-cert.pem); expired-* and
 * future-* are server certificates signed by the CA outside their validity; keys.psk holds alice.
 */
export function makeCerts(dir: string): Certs {
  const f = (n: string): string => path.join(dir, n);
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca-key.pem',
      '-out',
      'ca-cert.pem',
      '-days',
      '2',
      '-subj',
      '/CN=aionbd test CA',
    ],
    dir,
  );
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'rogue-ca-key.pem',
      '-out',
      'rogue-ca-cert.pem',
      '-days',
      '2',
      '-subj',
      '/CN=rogue CA',
    ],
    dir,
  );
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  const sign = (who: string, cn: string, ca: string): void => {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}-key.pem`, '-out', `${who}.csr`, '-subj', `/CN=${cn}`], dir);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${who}.csr`,
        '-CA',
        `${ca}-cert.pem`,
        '-CAkey',
        `${ca}-key.pem`,
        '-CAcreateserial',
        '-out',
        `${who}-cert.pem`,
        '-days',
        '2',
        '-extfile',
        'ext.cnf',
      ],
      dir,
    );
  };
  sign('server', 'localhost', 'ca');
  sign('client', 'aionbd client', 'ca');
  sign('rogue-client', 'rogue client', 'rogue-ca');
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'mallory-key.pem',
      '-out',
      'mallory-cert.pem',
      '-days',
      '2',
      '-subj',
      '/CN=mallory',
    ],
    dir,
  );

  // `openssl x509 -req` cannot date a certificate in the past; `openssl ca` can.
  fs.mkdirSync(f('ca-db'), { recursive: true });
  fs.writeFileSync(f('ca-db/index.txt'), '');
  fs.writeFileSync(f('ca-db/serial'), '1000\n');
  fs.writeFileSync(
    f('ca.cnf'),
    [
      '[ca]',
      'default_ca = c',
      '[c]',
      'database = ca-db/index.txt',
      'new_certs_dir = ca-db',
      'serial = ca-db/serial',
      'default_md = sha256',
      'policy = p',
      'unique_subject = no',
      '[p]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  for (const [who, start, end] of [
    ['expired', '20200101000000Z', '20200102000000Z'],
    ['future', '20990101000000Z', '20990102000000Z'],
  ] as const) {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}-key.pem`, '-out', `${who}.csr`, '-subj', '/CN=localhost'], dir);
    openssl(
      [
        'ca',
        '-batch',
        '-config',
        'ca.cnf',
        '-cert',
        'ca-cert.pem',
        '-keyfile',
        'ca-key.pem',
        '-in',
        `${who}.csr`,
        '-out',
        `${who}-cert.pem`,
        '-startdate',
        start,
        '-enddate',
        end,
        '-notext',
      ],
      dir,
    );
  }
  openssl(
    ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-aes256', '-pass', 'pass:secret', '-out', 'encrypted-key.pem'],
    dir,
  );

  const alicePsk = randomBytes(32);
  fs.writeFileSync(f('keys.psk'), `alice:${alicePsk.toString('hex')}\n`);
  return { dir, file: f, alicePsk };
}
