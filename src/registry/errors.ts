/**
 * Error classification for registry traffic (REGISTRY.md §8.5), in one place.
 * Pure: decides what a response or a failure means and builds the one-line user-facing errors.
 * Nothing here ever sees credentials; messages name the registry, repository and what to do.
 */
import { StowageError } from '../util/errors.js';

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Body of a distribution error response. */
export interface RegistryErrorBody {
  errors?: { code?: string; message?: string; detail?: unknown }[];
}

export interface RetryPolicy {
  /** Attempts in total, including the first. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Cap for a server's Retry-After (containers/image caps at 60 s). */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 60_000,
};

export type StatusClass =
  | { kind: 'ok' }
  | { kind: 'retry'; retryAfterMs?: number }
  | { kind: 'auth' }
  | { kind: 'fail' };

const RETRYABLE_STATUS = new Set([408, 429, 499, 500, 502, 503, 504, 522]);

/**
 * What to do with a status. 500 is retried only for requests without a body: 2.8.2 answers
 * 500 UNKNOWN to a malformed upload (REGISTRY.md §9), which no retry fixes.
 */
export function classifyStatus(status: number, options: { hasBody: boolean; retryAfter?: string | undefined; now?: number }): StatusClass {
  if (status >= 200 && status < 400) return { kind: 'ok' };
  if (status === 401) return { kind: 'auth' };
  if (status === 500 && options.hasBody) return { kind: 'fail' };
  if (RETRYABLE_STATUS.has(status)) {
    const retryAfterMs = parseRetryAfter(options.retryAfter, options.now ?? Date.now());
    return retryAfterMs === undefined ? { kind: 'retry' } : { kind: 'retry', retryAfterMs };
  }
  return { kind: 'fail' };
}

/** Retry-After as seconds or an HTTP date; undefined when absent or unparseable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^[0-9]+(?:\.[0-9]+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * Delay before attempt `attempt` (1 = first retry): full jitter over an exponential window, or the
 * server's Retry-After (capped) when it gave one. `random` is injected so the decision stays pure.
 */
export function retryDelayMs(attempt: number, policy: RetryPolicy, retryAfterMs: number | undefined, random: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxRetryAfterMs);
  const window = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(random * window);
}

const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** Connection resets, timeouts and truncated bodies: transient, worth another attempt. */
export function isRetryableNetworkError(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if ((cur as { retryable?: unknown }).retryable === true) return true;
    if (typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code)) return true;
    if (cur instanceof Error && /other side closed|socket hang up|premature close/i.test(cur.message)) return true;
  }
  return false;
}

export function isUnknownHostError(e: unknown): boolean {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (code === 'ENOTFOUND') return true;
  }
  return false;
}

/** Parses a JSON error body; undefined for anything else (HTML, text). */
export function parseErrorBody(text: string): RegistryErrorBody | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && Array.isArray((v as RegistryErrorBody).errors)) return v as RegistryErrorBody;
  } catch {
    // not JSON
  }
  return undefined;
}

export function errorCodes(body: RegistryErrorBody | undefined): string[] {
  return (body?.errors ?? []).map((e) => e.code ?? '').filter((c) => c !== '');
}

/** `CODE: message` of the first error, clipped so a bad response never floods a log line. */
function summarize(body: RegistryErrorBody | undefined, text: string, contentType: string | undefined): string {
  const first = body?.errors?.[0];
  if (first) return `${first.code ?? 'error'}: ${first.message ?? ''}`.trim().slice(0, 200);
  if (looksLikeHtml(text, contentType)) return 'an HTML page';
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine === '' ? 'an empty body' : JSON.stringify(oneLine.slice(0, 120));
}

export function looksLikeHtml(text: string, contentType: string | undefined): boolean {
  return (contentType ?? '').includes('text/html') || /^\s*<(!doctype|html)/i.test(text);
}

/** Where a failure happened, for messages. */
export interface RegistryErrorContext {
  registry: string;
  repository?: string;
  /** What we were doing: "pulling manifest latest", "uploading blob sha256:…". */
  action: string;
}

function where(ctx: RegistryErrorContext): string {
  return ctx.repository ? `${ctx.registry}/${ctx.repository}` : ctx.registry;
}

/** The user-facing error for a final, non-retryable HTTP response. */
export function httpError(ctx: RegistryErrorContext, status: number, text: string, contentType: string | undefined): StowageError {
  const body = parseErrorBody(text);
  const codes = errorCodes(body);
  const w = where(ctx);
  if (looksLikeHtml(text, contentType) && body === undefined) {
    return new StowageError('registry/not-a-registry', `${w}: ${ctx.action} failed: the server answered HTTP ${status} with an HTML page, not a registry response`, {
      hint: `check that ${ctx.registry} is a container registry (not a web page or login portal) and that the address and port are right`,
    });
  }
  if (status === 401) return wrongCredentials(ctx);
  if (status === 403 || codes.includes('DENIED')) {
    return new StowageError('registry/denied', `${w}: ${ctx.action} was denied (HTTP ${status})`, {
      hint: `the credentials for ${ctx.registry} are valid but lack permission for ${ctx.repository ?? 'this repository'}; check the account's access`,
    });
  }
  if (status === 404 || codes.includes('NAME_UNKNOWN') || codes.includes('MANIFEST_UNKNOWN')) {
    return new StowageError('registry/not-found', `${w}: ${ctx.action} failed: not found (${summarize(body, text, contentType)})`, {
      hint: `check the repository name and tag; list tags with 'skopeo list-tags docker://${w}'`,
    });
  }
  if (codes.includes('MANIFEST_INVALID') && /too large/i.test(text)) {
    return manifestTooLarge(ctx, undefined);
  }
  if (status === 429) {
    return new StowageError('registry/rate-limited', `${w}: ${ctx.action} failed: the registry kept answering 429 Too Many Requests`, {
      hint: 'wait and retry, lower the concurrency, or log in (anonymous pulls have lower limits)',
    });
  }
  return new StowageError('registry/http-error', `${w}: ${ctx.action} failed with HTTP ${status} (${summarize(body, text, contentType)})`, {
    hint: status >= 500 ? 'the registry failed; retry later or check its logs' : 'check the reference and the registry’s support for this operation',
  });
}

export function wrongCredentials(ctx: RegistryErrorContext): StowageError {
  return new StowageError('registry/unauthorized', `${where(ctx)}: ${ctx.action} failed: the registry rejected the credentials (HTTP 401)`, {
    hint: `check the username and password for ${ctx.registry} in your docker config ('docker login ${ctx.registry}'), or that the repository exists and you may access it`,
  });
}

/** A 401 when we had no credentials to offer. */
export function authenticationRequired(ctx: RegistryErrorContext): StowageError {
  return new StowageError('registry/unauthorized', `${where(ctx)}: ${ctx.action} failed: the registry requires authentication and no credentials were found for ${ctx.registry}`, {
    hint: `log in with 'docker login ${ctx.registry}' (stowage reads $DOCKER_CONFIG or ~/.docker/config.json), or check the repository name`,
  });
}

export function unknownHost(ctx: RegistryErrorContext): StowageError {
  return new StowageError('registry/unknown-host', `${where(ctx)}: ${ctx.action} failed: the host ${JSON.stringify(ctx.registry.replace(/:\d+$/, ''))} could not be resolved`, {
    hint: 'check the spelling of the registry in the reference and your DNS/network settings',
  });
}

/**
 * OpenSSL's verification failures as Node names them (plus its own host-name check): the server
 * answered TLS with a certificate this process does not trust, which no retry or plain HTTP fixes.
 */
const CERTIFICATE_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function certificateErrorCode(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && CERTIFICATE_ERRORS.has(code)) return code;
  }
  return undefined;
}

/**
 * A failure of a request sent through an HTTP proxy (`proxy`: its URL without credentials): the
 * proxy unreachable, or refusing the tunnel (407: credentials; 403: policy; 502: it cannot reach the
 * registry) become errors that name the proxy; anything else — inside the tunnel — is returned as
 * it is, to be classified (and retried) like a direct connection's.
 */
export function proxyError(ctx: RegistryErrorContext, proxy: string, cause: unknown): unknown {
  const message = cause instanceof Error ? cause.message : '';
  const refused = /Proxy response \((\d+)\) !== 200/.exec(message);
  if (refused || /Proxy Authentication Required/.test(message)) {
    const status = refused ? Number(refused[1]) : 407;
    return new StowageError('registry/proxy', `${where(ctx)}: ${ctx.action} failed: the proxy ${proxy} refused the connection to ${ctx.registry} (HTTP ${status})`, {
      hint:
        status === 407
          ? 'the proxy wants credentials: give them in the proxy URL, e.g. HTTPS_PROXY=http://user:password@host:port (URL-encoded)'
          : `check that the proxy lets ${ctx.registry} through, or exempt it with NO_PROXY`,
      cause,
    });
  }
  for (let cur: unknown = cause, depth = 0; cur && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH') {
      return new StowageError('registry/proxy', `${where(ctx)}: ${ctx.action} failed: cannot reach the proxy ${proxy} (${code})`, {
        hint: 'check HTTPS_PROXY / HTTP_PROXY, or exempt this registry with NO_PROXY',
        cause,
      });
    }
  }
  return cause;
}

export function networkError(ctx: RegistryErrorContext, cause: unknown, attempts: number): StowageError {
  const certificate = certificateErrorCode(cause);
  if (certificate !== undefined) {
    const code = certificate;
    return new StowageError('registry/certificate', `${where(ctx)}: ${ctx.action} failed: the TLS certificate of ${ctx.registry} is not trusted (${code})`, {
      hint:
        code === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? `the certificate does not name ${ctx.registry.replace(/:\d+$/, '')}; use the host name it was issued for`
          : code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID'
            ? `the registry's certificate is outside its validity period (or this machine's clock is wrong)`
            : `if ${ctx.registry} uses a private CA, set NODE_EXTRA_CA_CERTS to that CA's PEM file`,
      cause,
    });
  }
  const code = (cause as { code?: string })?.code;
  return new StowageError('registry/network', `${where(ctx)}: ${ctx.action} failed after ${attempts} attempt(s): ${code ?? 'connection error'}`, {
    hint: `check that ${ctx.registry} is reachable; for a plain-HTTP registry pass --insecure-registry ${ctx.registry}`,
    cause,
  });
}

export function manifestTooLarge(ctx: RegistryErrorContext, size: number | undefined): StowageError {
  return new StowageError(
    'registry/manifest-too-large',
    `${where(ctx)}: ${ctx.action} failed: the manifest${size !== undefined ? ` is ${size} bytes, which` : ''} exceeds the 4 MiB limit`,
    { hint: 'a manifest this large is malformed or hostile; check the reference' },
  );
}

export function digestMismatch(ctx: RegistryErrorContext, expected: string, actual: string): StowageError {
  return new StowageError('registry/digest-mismatch', `${where(ctx)}: ${ctx.action} failed: content digest ${actual} does not match the expected ${expected}; nothing was stored`, {
    hint: 'the registry or something between you and it corrupted the data; retry, and report it to the registry operator if it persists',
  });
}

export function sizeMismatch(ctx: RegistryErrorContext, expected: number, actual: number): StowageError {
  return new StowageError('registry/size-mismatch', `${where(ctx)}: ${ctx.action} failed: got ${actual} bytes, the descriptor says ${expected}; nothing was stored`, {
    hint: 'the registry returned truncated or extra data; retry, and report it to the registry operator if it persists',
  });
}

export function noMatchingPlatform(ctx: RegistryErrorContext, wanted: string, available: string[]): StowageError {
  return new StowageError(
    'registry/no-matching-platform',
    `${where(ctx)}: ${ctx.action} failed: no image for platform ${wanted} (available: ${available.length > 0 ? available.join(', ') : 'none'})`,
    { hint: 'choose one of the available platforms with --platform, or use an image built for yours' },
  );
}

export function insecureHint(registry: string): string {
  return `if ${registry} serves plain HTTP, pass --insecure-registry ${registry}`;
}
