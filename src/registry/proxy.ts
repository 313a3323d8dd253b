/**
 * Which HTTP proxy a request goes through, from HTTPS_PROXY / HTTP_PROXY / NO_PROXY, with the
 * semantics of Go's `http.ProxyFromEnvironment` (golang.org/x/net/http/httpproxy) — what Kaniko,
 * Buildah, skopeo and docker use, so CI machines configured for them behave the same here:
 * - https URLs use HTTPS_PROXY, http URLs HTTP_PROXY (upper case first, then lower case; an empty
 *   value is unset); ALL_PROXY is not read (Go does not either).
 * - a proxy value without a scheme means `http://`.
 * - `localhost` and loopback IPs are never proxied.
 * - NO_PROXY: comma- or space-separated; `*` turns proxies off; an IP or CIDR matches the host's IP;
 *   `example.com` matches it and its subdomains, `.example.com` and `*.example.com` only
 *   subdomains; an entry with `:port` matches that port only.
 * Pure: the environment is passed in, nothing is read here.
 */
import { BlockList, isIP } from 'node:net';
import { StowageError } from '../util/errors.js';

export interface ProxyConfig {
  httpsProxy?: URL;
  httpProxy?: URL;
  /** NO_PROXY as written (parsed on use). */
  noProxy: string;
}

/** The proxy settings in `env`; undefined when none is set (the usual case: no proxy code runs). */
export function proxyConfigFromEnv(env: Readonly<Record<string, string | undefined>>): ProxyConfig | undefined {
  const pick = (upper: string) => env[upper] || env[upper.toLowerCase()] || undefined;
  const https = pick('HTTPS_PROXY');
  const http = pick('HTTP_PROXY');
  if (https === undefined && http === undefined) return undefined;
  return {
    ...(https !== undefined ? { httpsProxy: parseProxyUrl('HTTPS_PROXY', https) } : {}),
    ...(http !== undefined ? { httpProxy: parseProxyUrl('HTTP_PROXY', http) } : {}),
    noProxy: pick('NO_PROXY') ?? '',
  };
}

function parseProxyUrl(name: string, value: string): URL {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new StowageError('usage/proxy', `${name} is not a proxy URL`, { hint: `set ${name} to http://host:port (credentials as http://user:password@host:port)` });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new StowageError('usage/proxy', `${name} uses ${url.protocol.slice(0, -1)}://, which stowage does not support`, { hint: `use an http:// or https:// proxy in ${name}` });
  }
  return url;
}

/** The proxy for `url`, or undefined to connect directly. */
export function proxyFor(config: ProxyConfig | undefined, url: URL): URL | undefined {
  if (!config) return undefined;
  const proxy = url.protocol === 'https:' ? config.httpsProxy : url.protocol === 'http:' ? config.httpProxy : undefined;
  if (!proxy) return undefined;
  const host = url.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (host === 'localhost' || isLoopbackIp(host)) return undefined;
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return bypassed(config.noProxy, host, port) ? undefined : proxy;
}

/** NO_PROXY's verdict for `host` (lower case, IPv6 without brackets) on `port`. */
export function bypassed(noProxy: string, host: string, port: string): boolean {
  const hostFamily = ipFamily(host);
  const hostIp = hostFamily ? { text: host, family: hostFamily } : undefined;
  for (const raw of noProxy.split(/[\s,]+/)) {
    let entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    if (entry.includes('/')) {
      const [net, bits] = entry.split('/') as [string, string];
      const family = ipFamily(net);
      if (hostIp && family && /^\d+$/.test(bits) && matches(hostIp, (list) => list.addSubnet(net, Number(bits), family))) return true;
      continue;
    }
    let entryPort: string | undefined;
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry);
    if (m && isIP(entry) !== 6) {
      entry = m[1]!;
      entryPort = m[2]!;
    }
    entry = entry.replace(/^\[(.*)\]$/, '$1');
    if (entryPort !== undefined && entryPort !== port) continue;
    const family = ipFamily(entry);
    if (family) {
      if (hostIp && matches(hostIp, (list) => list.addAddress(entry, family))) return true;
      continue;
    }
    if (entry.startsWith('*.')) entry = entry.slice(1);
    if (entry.startsWith('.')) {
      if (host.endsWith(entry)) return true;
    } else if (host === entry || host.endsWith(`.${entry}`)) return true;
  }
  return false;
}

type IpFamily = 'ipv4' | 'ipv6';

function ipFamily(text: string): IpFamily | undefined {
  const v = isIP(text);
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : undefined;
}

/**
 * Whether the address `ip` is in the set `fill` makes — Node's BlockList does the address
 * arithmetic, IPv6 forms and IPv4-mapped IPv6 addresses (::ffff:10.0.0.1 is in 10.0.0.0/8) included.
 */
function matches(ip: { text: string; family: IpFamily }, fill: (list: BlockList) => void): boolean {
  const list = new BlockList();
  fill(list);
  return list.check(ip.text, ip.family);
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

function isLoopbackIp(host: string): boolean {
  const family = ipFamily(host);
  return family !== undefined && LOOPBACK.check(host, family);
}

/** A proxy URL as it may be shown: without its credentials. */
export function shownProxy(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}
