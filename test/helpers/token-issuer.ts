/**
 * A Docker token server for tests: a loopback HTTP server issuing RS256 JWTs that Debian's
 * docker-registry (distribution 2.8) accepts with `auth.token.rootcertbundle`.
 *
 * It enforces one user/password (Basic on the token request), grants the requested scopes to that
 * user, and grants nothing to anonymous or wrong credentials (401).
 */
import { createServer, type Server } from 'node:http';
import { createHash, createPrivateKey, createPublicKey, sign, randomUUID, type KeyObject } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';

export interface TokenIssuerOptions {
  /** Directory for the key and certificate. */
  dir: string;
  username: string;
  password: string;
  service?: string;
  issuer?: string;
  /** Token lifetime (seconds) reported as expires_in and put in `exp`. */
  expiresIn?: number;
  /** Grant pull to anonymous requests (Docker Hub style). Default false: anonymous gets no access. */
  anonymousPull?: boolean;
}

export interface TokenRequestRecord {
  user: string | undefined;
  scopes: string[];
  granted: boolean;
}

export interface TokenIssuer {
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate for the registry's `rootcertbundle`. */
  certPath: string;
  requests: TokenRequestRecord[];
  stop(): Promise<void>;
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

/** libtrust key id: base32(sha256(DER SPKI)[:30]) in groups of 4, joined by ':'. distribution looks keys up by it. */
export function libtrustKeyId(pub: KeyObject): string {
  const der = pub.export({ type: 'spki', format: 'der' });
  const hash = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out.match(/.{1,4}/g)!.join(':');
}

function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  // repository:<name>:<actions>; names may not contain ':' except a registry port, which scopes never carry.
  const m = /^([a-z]+):(.+):([a-z*,]+)$/.exec(scope);
  if (!m) return undefined;
  return { type: m[1]!, name: m[2]!, actions: m[3]!.split(',') };
}

export async function startTokenIssuer(options: TokenIssuerOptions): Promise<TokenIssuer> {
  const keyPath = join(options.dir, 'token.key');
  const certPath = join(options.dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=stowage-test-token'], {
    stdio: 'ignore',
  });
  const privateKey = createPrivateKey(readFileSync(keyPath));
  const kid = libtrustKeyId(createPublicKey(privateKey));
  const service = options.service ?? 'stowage-test-registry';
  const issuer = options.issuer ?? 'stowage-test-issuer';
  const expiresIn = options.expiresIn ?? 300;
  const requests: TokenRequestRecord[] = [];

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s !== '');
    let user: string | undefined;
    let authenticated = false;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      user = decoded.slice(0, i);
      authenticated = user === options.username && decoded.slice(i + 1) === options.password;
      if (!authenticated) {
        requests.push({ user, scopes, granted: false });
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] }));
        return;
      }
    }
    const access = scopes
      .map(parseScope)
      .filter((s): s is NonNullable<typeof s> => s !== undefined)
      .map((s) => ({ ...s, actions: authenticated ? s.actions : options.anonymousPull ? s.actions.filter((a) => a === 'pull') : [] }));
    requests.push({ user, scopes, granted: authenticated });
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', kid };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + expiresIn, nbf: now - 10, iat: now, jti: randomUUID(), access };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), privateKey);
    const token = `${signingInput}.${b64url(signature)}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: expiresIn, issued_at: new Date(now * 1000).toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certPath,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
