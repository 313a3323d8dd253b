/**
 * A throwaway certificate authority and one server certificate it signed, made with `openssl` in a
 * directory of the test's, for TLS tests that must not trust anything real.
 *
 *   const certs = makeTestCertificates(dir, { ips: ['127.0.0.2'] });
 *   … certs.caPath (PEM), certs.certPath, certs.keyPath …
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCertificates {
  /** The CA's certificate: what a client must trust. */
  caPath: string;
  /** The server's certificate (signed by the CA) and its key. */
  certPath: string;
  keyPath: string;
}

export function makeTestCertificates(dir: string, options: { ips: readonly string[] }): TestCertificates {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  // EC keys: generated in milliseconds, unlike RSA.
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=stowage throwaway test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${options.ips[0] ?? 'localhost'}`);
  writeFileSync(
    join(dir, 'server.ext'),
    `subjectAltName=${options.ips.map((ip) => `IP:${ip}`).join(',')}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`,
  );
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext');
  return { caPath: join(dir, 'ca.pem'), certPath: join(dir, 'server.pem'), keyPath: join(dir, 'server.key') };
}
