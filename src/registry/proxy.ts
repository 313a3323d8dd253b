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
import { isIP } from 'node:net';
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
  for (const raw of noProxy.split(/[\s,]+/)) {
    let entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    if (entry.includes('/')) {
      if (isIP(host) && inCidr(host, entry)) return true;
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
    if (isIP(entry)) {
      if (isIP(host) && sameIp(entry, host)) return true;
      continue;
    }
    if (entry.startsWith('*.')) entry = entry.slice(1);
    if (entry.startsWith('.')) {
      if (host.endsWith(entry)) return true;
    } else if (host === entry || host.endsWith(`.${entry}`)) return true;
  }
  return false;
}

function isLoopbackIp(host: string): boolean {
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) {
    const bytes = ipBytes(host);
    if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes[12] === 127; // ::ffff:127.x
    return bytes.slice(0, 15).every((b) => b === 0) && bytes[15] === 1;
  }
  return false;
}

function sameIp(a: string, b: string): boolean {
  const x = ipBytes(a);
  const y = ipBytes(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function inCidr(host: string, cidr: string): boolean {
  const [net, bitsText] = cidr.split('/') as [string, string];
  if (!isIP(net) || !/^\d+$/.test(bitsText)) return false;
  const a = ipBytes(host);
  const b = ipBytes(net);
  if (a.length !== b.length) return false;
  const bits = Number(bitsText);
  if (bits > a.length * 8) return false;
  for (let i = 0; i < bits; i++) {
    const mask = 0x80 >> (i % 8);
    if ((a[Math.floor(i / 8)]! & mask) !== (b[Math.floor(i / 8)]! & mask)) return false;
  }
  return true;
}

/** 4 bytes for IPv4, 16 for IPv6 (with an embedded IPv4 tail expanded). */
function ipBytes(ip: string): number[] {
  if (isIP(ip) === 4) return ip.split('.').map(Number);
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tail: number[] = [];
  if (v4) {
    tail = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + '0:0';
  }
  const [head, rest] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((h) => parseInt(h, 16)));
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  const groups = rest === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  if (v4) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** A proxy URL as it may be shown: without its credentials. */
export function shownProxy(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}
