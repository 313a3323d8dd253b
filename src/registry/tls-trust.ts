/**
 * Which certificate authorities TLS connections to registries and ADD downloads trust.
 *
 * Node 20 parses its bundled root store and the NODE_EXTRA_CA_CERTS file eagerly at process start
 * when that variable is set (~50 ms of every run, TLS or not). The launcher (bin/stowage) therefore
 * starts Node without it and hands the value over as STOWAGE_DEFERRED_CA_CERTS; this module gives it
 * the same meaning as Node's — the file's certificates are trusted in addition to Node's bundled
 * roots, an unreadable file is a warning and the bundled roots alone are used — but only when the
 * first TLS connection asks for it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { SecureContext } from 'node:tls';

export interface TlsTrust {
  /**
   * The context TLS connections use; undefined means Node's defaults. Built on the first call
   * (parsing ~280 certificates), the same object afterwards: connections share it rather than
   * passing `ca` each, which would parse them all again per connection.
   */
  secureContext(): SecureContext | undefined;
}

/** Node's defaults: nothing was deferred. */
const NODE_DEFAULTS: TlsTrust = { secureContext: () => undefined };

export interface DeferredTlsTrustOptions {
  /** Where the one-time warning about an unreadable file goes (default: process.stderr). */
  warn?: (message: string) => void;
}

/**
 * The trust the launcher deferred. Restores `env.NODE_EXTRA_CA_CERTS` (so child processes such as
 * docker credential helpers see the user's environment unchanged) and removes
 * STOWAGE_DEFERRED_CA_CERTS; call it once, before anything reads the environment or starts a child.
 * Unset or empty (started with `node bin/stowage`, or no NODE_EXTRA_CA_CERTS): Node's defaults.
 */
export function deferredTlsTrust(env: NodeJS.ProcessEnv, options: DeferredTlsTrustOptions = {}): TlsTrust {
  const file = env.STOWAGE_DEFERRED_CA_CERTS;
  if (file === undefined) return NODE_DEFAULTS;
  delete env.STOWAGE_DEFERRED_CA_CERTS;
  // The launcher sets it to the empty string when NODE_EXTRA_CA_CERTS was unset (env -S expands
  // an unset ${NAME} to nothing): nothing deferred, and nothing to restore.
  if (file === '') return NODE_DEFAULTS;
  env.NODE_EXTRA_CA_CERTS = file;
  const warn = options.warn ?? ((m: string) => void process.stderr.write(m));
  let built: { context: SecureContext | undefined } | undefined;
  return {
    secureContext() {
      built ??= { context: buildContext(file, warn) };
      return built.context;
    },
  };
}

function buildContext(file: string, warn: (message: string) => void): SecureContext | undefined {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (e) {
    // Node's own wording for NODE_EXTRA_CA_CERTS, so users recognise it.
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (e as Error).message;
    warn(`Warning: Ignoring extra certs from \`${file}\`, load failed: ${reason}\n`);
    return undefined;
  }
  // Loaded here, not at the top: node:tls is needed only once a TLS connection is made, and this
  // module is loaded by every run. require(), not import(): the port is synchronous (a connection pool
  // or agent is configured with the context when it is made). node:module is loaded by Node anyway.
  const tls = createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
  try {
    // `ca` replaces the bundled roots, so they are passed too: NODE_EXTRA_CA_CERTS adds to them.
    const roots = tls.rootCertificates;
    return tls.createSecureContext({ ca: [...roots, withoutCertificatesOf(pem, roots)] });
  } catch (e) {
    warn(`Warning: Ignoring extra certs from \`${file}\`, load failed: ${(e as Error).message}\n`);
    return undefined;
  }
}

/**
 * `pem` without the certificates that are also in `roots`. CI machines often point
 * NODE_EXTRA_CA_CERTS at the system bundle (/etc/ssl/certs/ca-certificates.crt), which repeats most
 * of Node's bundled roots; each certificate costs a parse, and here the repeats made building the
 * context ~80 ms instead of ~55 (Node 20, 144 + 144 certificates). Trusting a certificate twice
 * changes nothing. Everything else in the file is passed on as it is.
 */
export function withoutCertificatesOf(pem: string, roots: readonly string[]): string {
  const body = (cert: string) => cert.replace(/-----[A-Z ]+-----|\s+/g, '');
  const known = new Set(roots.map(body));
  return pem.replace(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\s*/g, (cert) => (known.has(body(cert)) ? '' : cert));
}
