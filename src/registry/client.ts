/**
 * The HTTP layer for registries: one undici Pool per origin, auth (ping → challenge → Bearer token
 * per scope set, or Basic), retries with jittered backoff that honours Retry-After, redirects with
 * Authorization dropped across origins, plain HTTP only where allowed.
 *
 * Holds per-run caches (pools, challenges, tokens) in the client instance, never at module level.
 */
import type { Dispatcher } from 'undici';
import { PoolRequester, createPool } from './undici-pool.js';
import { proxyFor, shownProxy, type ProxyConfig } from './proxy.js';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { StowageError, isAbortError } from '../util/errors.js';
import {
  basicAuthorization,
  dockerConfigCredentials,
  parseChallenge,
  scopeSetKey,
  tokenRefreshAt,
  type Challenge,
  type CredentialSource,
  type Credentials,
  type Token,
} from './auth.js';
import {
  DEFAULT_RETRY_POLICY,
  classifyStatus,
  httpError,
  isRetryableNetworkError,
  isUnknownHostError,
  looksLikeHtml,
  networkError,
  retryDelayMs,
  authenticationRequired,
  unknownHost,
  proxyError,
  wrongCredentials,
  type RegistryErrorContext,
  type RetryPolicy,
} from './errors.js';
import { DOCKER_HUB, registryApiHost } from './reference.js';
import type { TlsTrust } from './tls-trust.js';

export interface RegistryClientOptions {
  /** Where credentials come from; defaults to docker's config (`DOCKER_CONFIG`, `~/.docker/config.json`). */
  credentials?: CredentialSource;
  /** Registries (`host:port`) spoken to over plain HTTP. `localhost` and `127.0.0.1` always are. */
  insecureRegistries?: readonly string[];
  /** Pull mirrors for docker.io (`https://mirror.example.com` or `host:port`). */
  registryMirrors?: readonly string[];
  retry?: Partial<RetryPolicy>;
  /** Connections per origin (default 8). */
  connectionsPerHost?: number;
  userAgent?: string;
  /** Injected randomness for backoff jitter (tests); defaults to Math.random. */
  random?: () => number;
  /** CAs trusted for https origins (the launcher's deferred NODE_EXTRA_CA_CERTS); default: Node's. */
  tls?: TlsTrust;
  /** HTTPS_PROXY / HTTP_PROXY / NO_PROXY (./proxy.ts); default: every connection direct. */
  proxy?: ProxyConfig;
}

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A body that can be produced again for a retry or after re-authentication. */
export type ReplayableBody = Uint8Array | (() => Promise<Readable>);

export interface RegistryRequest {
  /** Registry name as in references (`docker.io`, `localhost:5000`), or a mirror's name. */
  registry: string;
  repository?: string;
  /** What this request does, for error messages ("pulling manifest latest"). */
  action: string;
  method: HttpMethod;
  /** Path and query under the registry origin (`/v2/…`), or an absolute URL (upload Location). */
  target: string;
  /** Token scopes this request needs (e.g. `repository:a/b:pull`). */
  scopes: readonly string[];
  headers?: Record<string, string>;
  body?: ReplayableBody;
  /** Retry on 408/429/5xx and connection resets (default: true). Upload commits set false. */
  retry?: boolean;
  /** Follow 3xx (default: true for GET, false otherwise; HEAD must not follow, REGISTRY.md §8.4). */
  followRedirects?: boolean;
  /** Statuses returned to the caller; anything else becomes a classified StowageError. */
  expect: readonly number[];
  headersTimeoutMs?: number;
  /** Buffering of the response body stream (undici's default is 64 KiB); blob downloads read bigger slices. */
  bodyHighWaterMark?: number;
  /** Counts every HTTP exchange this request causes (retries, token fetches) for stats. */
  counter?: { requests: number };
}

export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** URL that answered (after redirects), for resolving relative Locations. */
  url: string;
}

export function header(res: Pick<RegistryResponse, 'headers'>, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Reads at most `max` bytes of a body; throws `tooLarge()` beyond that. */
export async function readBody(body: Readable, max: number, tooLarge?: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > max) {
      body.destroy();
      throw tooLarge ? tooLarge() : new Error(`body larger than ${max} bytes`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

async function dump(body: Readable): Promise<void> {
  try {
    // Small error bodies are drained so the connection is reused; big ones are cut.
    await readBody(body, 64 * 1024);
  } catch {
    body.destroy();
  }
}

/** A transient status outside `request` (ping, token fetch), retried like a network error. */
function retryableStatus(status: number): Error {
  return Object.assign(new Error(`HTTP ${status}`), { code: `HTTP ${status}`, retryable: true });
}

function hostOnly(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(0, hostPort.indexOf(']') + 1);
  return hostPort.replace(/:\d+$/, '');
}

/** Docker's default: loopback registries speak plain HTTP without being listed. */
export function isLoopbackRegistry(registry: string): boolean {
  const h = hostOnly(registry);
  return h === 'localhost' || h === '127.0.0.1' || h === '[::1]';
}

interface HostState {
  /** Resolves to the challenge (undefined = no auth needed). */
  ping?: Promise<Challenge | undefined>;
  tokens: Map<string, Promise<Token>>;
  credentials?: Promise<Credentials | undefined>;
}

export interface MirrorEndpoint {
  /** Name used for credentials, state and messages (`host:port`). */
  name: string;
  origin: string;
}

export class RegistryClient {
  /** Per origin: its connection pool, or the agent of the proxy it goes through. */
  private readonly pools = new Map<string, Dispatcher>();
  /** One agent per proxy URL, shared by the origins behind it (made on first use: loading it is async). */
  private readonly proxyAgents = new Map<string, Promise<Dispatcher>>();
  private readonly proxy: ProxyConfig | undefined;
  private readonly hosts = new Map<string, HostState>();
  private readonly credentialSource: CredentialSource;
  private readonly insecure: Set<string>;
  private readonly policy: RetryPolicy;
  private readonly connections: number;
  private readonly userAgent: string;
  private readonly random: () => number;
  private readonly tls: TlsTrust | undefined;
  private readonly requester = new PoolRequester();
  private readonly originOverrides = new Map<string, string>();
  /** docker.io pull mirrors in preference order. */
  readonly mirrors: readonly MirrorEndpoint[];
  /** Every HTTP exchange per registry name, for stats and tests. */
  readonly requestCounts = new Map<string, number>();

  constructor(options: RegistryClientOptions = {}) {
    this.credentialSource = options.credentials ?? dockerConfigCredentials();
    this.insecure = new Set(options.insecureRegistries ?? []);
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.connections = options.connectionsPerHost ?? 8;
    this.userAgent = options.userAgent ?? 'stowage';
    this.random = options.random ?? Math.random;
    this.tls = options.tls;
    this.proxy = options.proxy;
    this.mirrors = (options.registryMirrors ?? []).map((m) => this.parseMirror(m));
    for (const m of this.mirrors) this.originOverrides.set(m.name, m.origin);
  }

  private parseMirror(m: string): MirrorEndpoint {
    const withScheme = /^https?:\/\//.test(m) ? m : `${this.isInsecure(m.replace(/\/.*$/, '')) ? 'http' : 'https'}://${m}`;
    let u: URL;
    try {
      u = new URL(withScheme);
    } catch {
      throw new StowageError('usage/invalid-mirror', `registry mirror ${JSON.stringify(m)} is not a valid URL or host:port`, {
        hint: 'use e.g. --registry-mirror https://mirror.example.com or --registry-mirror 127.0.0.1:5000',
      });
    }
    return { name: u.host, origin: u.origin };
  }

  private isInsecure(registry: string): boolean {
    return this.insecure.has(registry) || isLoopbackRegistry(registry);
  }

  /** `scheme://host[:port]` for a registry name. */
  originOf(registry: string): string {
    const override = this.originOverrides.get(registry);
    if (override) return override;
    return `${this.isInsecure(registry) ? 'http' : 'https'}://${registryApiHost(registry)}`;
  }

  /** The connection pool for `origin`, or the agent of the proxy it goes through (./proxy.ts). */
  private pool(origin: string): Dispatcher | Promise<Dispatcher> {
    const known = this.pools.get(origin);
    if (known) return known;
    const options = {
      connections: this.connections,
      headersTimeout: 300_000,
      bodyTimeout: 300_000,
      // Node's default, set here rather than read from node:http (scripts/bundle.mjs leaves
      // node:http out of the bundles: registry responses never carry large headers).
      maxHeaderSize: 16 * 1024,
    };
    const proxy = proxyFor(this.proxy, new URL(origin));
    if (proxy) {
      let agent = this.proxyAgents.get(proxy.href);
      if (!agent) {
        // The registry's TLS runs inside the tunnel (requestTls); the proxy's own, if it speaks
        // https, outside it (proxyTls).
        const requestContext = this.tls?.secureContext();
        const proxyContext = proxy.protocol === 'https:' ? requestContext : undefined;
        agent = import('./proxy-agent.js').then(({ createProxyAgent }) => createProxyAgent({
          uri: proxy.href,
          ...options,
          ...(requestContext ? { requestTls: { secureContext: requestContext } } : {}),
          ...(proxyContext ? { proxyTls: { secureContext: proxyContext } } : {}),
        }));
        this.proxyAgents.set(proxy.href, agent);
      }
      return agent.then((a) => {
        this.pools.set(origin, a);
        return a;
      });
    }
    // Asked only for https origins, so a run that speaks plain HTTP never builds the context. One
    // context for every pool: undici passes `connect` through to tls.connect.
    const secureContext = origin.startsWith('https:') ? this.tls?.secureContext() : undefined;
    const p = createPool(origin, { ...options, ...(secureContext ? { connect: { secureContext } } : {}) });
    this.pools.set(origin, p);
    return p;
  }

  private host(registry: string): HostState {
    let h = this.hosts.get(registry);
    if (!h) {
      h = { tokens: new Map() };
      this.hosts.set(registry, h);
    }
    return h;
  }

  private count(registry: string, counter: { requests: number } | undefined): void {
    this.requestCounts.set(registry, (this.requestCounts.get(registry) ?? 0) + 1);
    if (counter) counter.requests++;
  }

  async close(): Promise<void> {
    const agents = await Promise.all([...this.proxyAgents.values()].map((a) => a.catch(() => undefined)));
    // An origin behind a proxy maps to the proxy's agent: each dispatcher closed once.
    const pools = [...new Set([...this.pools.values(), ...agents.filter((a) => a !== undefined)])];
    this.pools.clear();
    this.proxyAgents.clear();
    await Promise.all(pools.map((p) => p.close().catch(() => p.destroy())));
  }

  private credentials(registry: string, signal?: AbortSignal): Promise<Credentials | undefined> {
    const h = this.host(registry);
    h.credentials ??= this.credentialSource(registry, signal);
    return h.credentials;
  }

  /** One raw exchange, with network errors classified; no auth, no retry. */
  private async exchange(
    url: URL,
    init: { method: HttpMethod; headers: Record<string, string>; body?: Uint8Array | Readable; headersTimeoutMs?: number; bodyHighWaterMark?: number },
    ctx: RegistryErrorContext,
    signal: AbortSignal | undefined,
  ): Promise<Dispatcher.ResponseData> {
    const opts: Dispatcher.RequestOptions = {
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: init.method,
      headers: { 'user-agent': this.userAgent, ...init.headers },
      ...(init.body !== undefined ? { body: init.body } : {}),
      ...(signal ? { signal } : {}),
      ...(init.headersTimeoutMs !== undefined ? { headersTimeout: init.headersTimeoutMs } : {}),
      ...(init.bodyHighWaterMark !== undefined ? { highWaterMark: init.bodyHighWaterMark } : {}),
      // undici closes the connection after every HEAD (in case a broken server sends a body anyway):
      // a push HEADs each blob first, so 2,000 blobs meant 2,000 new connections. Registry servers
      // answer HEAD per RFC 9110 (no body), so keep the connection.
      ...(init.method === 'HEAD' ? { reset: false } : {}),
    };
    try {
      return await this.requester.request(await this.pool(url.origin), opts);
    } catch (e) {
      if (signal?.aborted) throw e;
      // Before the abort check: undici reports a proxy's refusal of the tunnel as an AbortError.
      const proxy = proxyFor(this.proxy, url);
      if (proxy) {
        const failure = proxyError(ctx, shownProxy(proxy), e);
        if (failure !== e) throw failure;
      }
      if (isAbortError(e)) throw e;
      if (isUnknownHostError(e)) throw unknownHost(ctx);
      throw e;
    }
  }

  /** GET /v2/ once per registry to learn how it authenticates. */
  private ping(registry: string, ctx: RegistryErrorContext, counter: { requests: number } | undefined, signal?: AbortSignal): Promise<Challenge | undefined> {
    const h = this.host(registry);
    if (!h.ping) {
      h.ping = this.withNetworkRetry(ctx, signal, async () => {
        this.count(registry, counter);
        const res = await this.exchange(new URL('/v2/', this.originOf(registry)), { method: 'GET', headers: {} }, ctx, signal);
        const text = (await readBody(res.body, 64 * 1024).catch(() => Buffer.alloc(0))).toString('utf8');
        if (res.statusCode === 200) return undefined;
        if (res.statusCode === 401) {
          const c = parseChallenge(header({ headers: res.headers }, 'www-authenticate'));
          if (!c) {
            throw new StowageError('registry/auth-unsupported', `${registry}: the registry asks for an authentication scheme stowage does not support`, {
              hint: 'stowage supports Docker token (Bearer) and Basic authentication',
            });
          }
          return c;
        }
        const probeCtx = { ...ctx, action: `${ctx.action} (probing /v2/)` };
        if (res.statusCode === 404 && !looksLikeHtml(text, header({ headers: res.headers }, 'content-type'))) {
          throw new StowageError('registry/not-a-registry', `${registry}: ${probeCtx.action} failed: the server has no registry API at /v2/ (HTTP 404)`, {
            hint: `check that ${registry} is a container registry and that the address and port are right`,
          });
        }
        if (classifyStatus(res.statusCode, { hasBody: false }).kind === 'retry') throw retryableStatus(res.statusCode);
        throw httpError(probeCtx, res.statusCode, text, header({ headers: res.headers }, 'content-type'));
      });
      // A failed ping is not cached: the next request probes again.
      h.ping.catch(() => {
        if (this.hosts.get(registry) === h) h.ping = undefined;
      });
    }
    return h.ping;
  }

  private async withNetworkRetry<T>(ctx: RegistryErrorContext, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (isAbortError(e) || signal?.aborted || e instanceof StowageError) throw e;
        if (!isRetryableNetworkError(e)) throw networkError(ctx, e, attempt);
        if (attempt >= this.policy.maxAttempts) throw networkError(ctx, e, attempt);
        await sleep(retryDelayMs(attempt, this.policy, undefined, this.random()), undefined, signal ? { signal } : {});
      }
    }
  }

  /** A Bearer token for the scope set, from cache unless it is due for refresh. */
  private async token(
    registry: string,
    challenge: Challenge,
    scopes: readonly string[],
    ctx: RegistryErrorContext,
    counter: { requests: number } | undefined,
    signal?: AbortSignal,
    forceRefresh = false,
  ): Promise<string> {
    const h = this.host(registry);
    const key = scopeSetKey(scopes);
    const cached = h.tokens.get(key);
    if (cached && !forceRefresh) {
      const t = await cached.catch(() => undefined);
      if (t && Date.now() < t.refreshAt) return t.token;
    }
    const fresh = this.fetchToken(registry, challenge, scopes, ctx, counter, signal);
    h.tokens.set(key, fresh);
    fresh.catch(() => {
      if (h.tokens.get(key) === fresh) h.tokens.delete(key);
    });
    return (await fresh).token;
  }

  private async fetchToken(
    registry: string,
    challenge: Challenge,
    scopes: readonly string[],
    ctx: RegistryErrorContext,
    counter: { requests: number } | undefined,
    signal?: AbortSignal,
  ): Promise<Token> {
    if (!challenge.realm) {
      throw new StowageError('registry/auth-unsupported', `${registry}: the registry's token challenge has no realm`, { hint: 'the registry is misconfigured' });
    }
    let realm: URL;
    try {
      realm = new URL(challenge.realm);
    } catch {
      throw new StowageError('registry/auth-unsupported', `${registry}: the registry's token realm is not a URL`, { hint: 'the registry is misconfigured' });
    }
    const creds = await this.credentials(registry, signal);
    const issuedAt = Date.now();
    const tokenCtx = { ...ctx, action: `${ctx.action} (getting a token)` };
    return this.withNetworkRetry(tokenCtx, signal, async () => {
      this.count(registry, counter);
      let res: Dispatcher.ResponseData;
      if (creds && creds.username === '<token>') {
        // An identity token from `docker login` is an OAuth2 refresh token.
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.password, client_id: 'stowage' });
        if (challenge.service) form.set('service', challenge.service);
        if (scopes.length > 0) form.set('scope', scopes.join(' '));
        res = await this.exchange(realm, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from(form.toString()) }, tokenCtx, signal);
      } else {
        const u = new URL(realm);
        if (challenge.service) u.searchParams.set('service', challenge.service);
        for (const s of scopes) u.searchParams.append('scope', s);
        res = await this.exchange(u, { method: 'GET', headers: creds ? { authorization: basicAuthorization(creds) } : {} }, tokenCtx, signal);
      }
      const text = (await readBody(res.body, 1024 * 1024)).toString('utf8');
      if (res.statusCode === 401 || res.statusCode === 403) throw creds ? wrongCredentials(ctx) : authenticationRequired(ctx);
      if (classifyStatus(res.statusCode, { hasBody: false }).kind === 'retry') throw retryableStatus(res.statusCode);
      if (res.statusCode !== 200) throw httpError(tokenCtx, res.statusCode, text, header({ headers: res.headers }, 'content-type'));
      let parsed: { token?: string; access_token?: string; expires_in?: number };
      try {
        parsed = JSON.parse(text) as typeof parsed;
      } catch {
        throw httpError(tokenCtx, res.statusCode, text, header({ headers: res.headers }, 'content-type'));
      }
      const token = parsed.token ?? parsed.access_token;
      if (!token) throw new StowageError('registry/auth-unsupported', `${registry}: the token server answered without a token`, { hint: 'the registry is misconfigured' });
      return { token, refreshAt: tokenRefreshAt(issuedAt, parsed.expires_in) };
    });
  }

  private async authorization(
    registry: string,
    scopes: readonly string[],
    ctx: RegistryErrorContext,
    counter: { requests: number } | undefined,
    signal: AbortSignal | undefined,
    forceRefresh: boolean,
  ): Promise<{ value?: string; hadCredentials: boolean }> {
    const challenge = await this.ping(registry, ctx, counter, signal);
    if (!challenge) return { hadCredentials: false };
    if (challenge.scheme === 'basic') {
      const creds = await this.credentials(registry, signal);
      return creds ? { value: basicAuthorization(creds), hadCredentials: true } : { hadCredentials: false };
    }
    const token = await this.token(registry, challenge, scopes, ctx, counter, signal, forceRefresh);
    const creds = await this.credentials(registry, signal);
    return { value: `Bearer ${token}`, hadCredentials: creds !== undefined };
  }

  /**
   * One logical request: authenticated, retried on transient failures (when allowed), redirects
   * followed where asked. Returns responses whose status is in `expect`; throws a classified
   * StowageError otherwise. The caller must consume or destroy the returned body.
   */
  async request(req: RegistryRequest, signal?: AbortSignal): Promise<RegistryResponse> {
    const ctx: RegistryErrorContext = { registry: req.registry, action: req.action, ...(req.repository ? { repository: req.repository } : {}) };
    const origin = this.originOf(req.registry);
    let url = /^https?:\/\//.test(req.target) ? new URL(req.target) : new URL(req.target, origin);
    const retry = req.retry ?? true;
    const followRedirects = req.followRedirects ?? req.method === 'GET';
    let scopes = [...req.scopes];
    let auth = await this.authorization(req.registry, scopes, ctx, req.counter, signal, false);
    let authRetried = false;
    let redirects = 0;
    for (let attempt = 1; ; ) {
      const sameOrigin = url.origin === origin;
      const headers: Record<string, string> = { ...req.headers };
      // Authorization never crosses to another origin (S3/GCS redirects, REGISTRY.md §8.4).
      if (auth.value && sameOrigin) headers.authorization = auth.value;
      let body: Uint8Array | Readable | undefined;
      if (req.body instanceof Uint8Array) body = req.body;
      else if (req.body) body = await req.body();
      this.count(req.registry, req.counter);
      let res: Dispatcher.ResponseData;
      try {
        res = await this.exchange(
          url,
          {
            method: req.method,
            headers,
            ...(body !== undefined ? { body } : {}),
            ...(req.headersTimeoutMs ? { headersTimeoutMs: req.headersTimeoutMs } : {}),
            ...(req.bodyHighWaterMark ? { bodyHighWaterMark: req.bodyHighWaterMark } : {}),
          },
          ctx,
          signal,
        );
      } catch (e) {
        if (body instanceof Readable) body.destroy();
        if (isAbortError(e) || signal?.aborted || e instanceof StowageError) throw e;
        if (retry && isRetryableNetworkError(e) && attempt < this.policy.maxAttempts) {
          await sleep(retryDelayMs(attempt, this.policy, undefined, this.random()), undefined, signal ? { signal } : {});
          attempt++;
          continue;
        }
        throw networkError(ctx, e, attempt);
      }
      const status = res.statusCode;
      const response: RegistryResponse = { status, headers: res.headers, body: res.body, url: url.toString() };
      if (req.expect.includes(status)) return response;

      if (status === 401 && sameOrigin) {
        const challenge = parseChallenge(header(response, 'www-authenticate'));
        await dump(res.body);
        if (!authRetried && (challenge?.scheme === 'bearer' || !auth.value)) {
          // insufficient_scope or an expired token: widen to the scope the server names, fetch anew, once.
          if (challenge?.scope) scopes = [...new Set([...scopes, ...challenge.scope.split(' ')])];
          authRetried = true;
          auth = await this.authorization(req.registry, scopes, ctx, req.counter, signal, true);
          continue;
        }
        throw auth.hadCredentials ? wrongCredentials(ctx) : authenticationRequired(ctx);
      }
      if (followRedirects && status >= 300 && status < 400 && header(response, 'location')) {
        await dump(res.body);
        if (++redirects > 5) throw httpError(ctx, status, 'too many redirects', 'text/plain');
        url = new URL(header(response, 'location')!, url);
        continue;
      }
      const cls = classifyStatus(status, { hasBody: req.body !== undefined, retryAfter: header(response, 'retry-after') });
      if (cls.kind === 'retry' && retry && attempt < this.policy.maxAttempts) {
        await dump(res.body);
        await sleep(retryDelayMs(attempt, this.policy, cls.retryAfterMs, this.random()), undefined, signal ? { signal } : {});
        attempt++;
        continue;
      }
      const text = (await readBody(res.body, 64 * 1024).catch(() => Buffer.from(''))).toString('utf8');
      throw httpError(ctx, status, text, header(response, 'content-type'));
    }
  }
}

/** True for `docker.io`, the only registry mirrors apply to. */
export function mirrorsApply(registry: string): boolean {
  return registry === DOCKER_HUB;
}
