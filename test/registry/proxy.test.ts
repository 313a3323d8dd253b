import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bypassed, proxyConfigFromEnv, proxyFor, shownProxy } from '../../src/registry/proxy.js';
import { StowageError } from '../../src/util/errors.js';

const via = (env: Record<string, string>, url: string) => proxyFor(proxyConfigFromEnv(env), new URL(url))?.href;

test('HTTPS_PROXY for https URLs, HTTP_PROXY for http ones; upper case wins; empty means unset; no scheme means http://', () => {
  assert.equal(proxyConfigFromEnv({}), undefined);
  assert.equal(proxyConfigFromEnv({ HTTPS_PROXY: '', NO_PROXY: 'x' }), undefined);
  const env = { HTTPS_PROXY: 'proxy.corp:3128', https_proxy: 'http://lower:1', http_proxy: 'http://plain:8080' };
  assert.equal(via(env, 'https://registry-1.docker.io/v2/'), 'http://proxy.corp:3128/');
  assert.equal(via(env, 'http://registry.internal:5000/v2/'), 'http://plain:8080/');
  assert.equal(via({ https_proxy: 'http://lower:1' }, 'https://ghcr.io/v2/'), 'http://lower:1/');
  assert.equal(via({ HTTP_PROXY: 'http://p:1' }, 'https://ghcr.io/v2/'), undefined, 'an https URL needs HTTPS_PROXY');
});

test('localhost and loopback addresses are never proxied (Go’s rule), whatever NO_PROXY says', () => {
  const env = { HTTPS_PROXY: 'http://p:1', HTTP_PROXY: 'http://p:1' };
  for (const url of ['http://localhost:5000/v2/', 'http://127.0.0.1:5000/v2/', 'http://127.3.4.5/', 'http://[::1]:5000/', 'http://[::ffff:127.0.0.1]/']) {
    assert.equal(via(env, url), undefined, url);
  }
  assert.equal(via(env, 'http://localhost.corp/'), 'http://p:1/');
  assert.equal(via(env, 'http://10.0.0.1/'), 'http://p:1/');
});

test('NO_PROXY: *, domains with their subdomains, leading-dot and *. suffixes, IPs, CIDRs, ports', () => {
  const cases: [string, string, string, boolean][] = [
    ['*', 'anything.example', '443', true],
    ['example.com', 'example.com', '443', true],
    ['example.com', 'reg.example.com', '443', true],
    ['example.com', 'notexample.com', '443', false],
    ['.example.com', 'example.com', '443', false],
    ['.example.com', 'a.b.example.com', '443', true],
    ['*.example.com', 'reg.example.com', '443', true],
    ['*.example.com', 'example.com', '443', false],
    ['Example.COM', 'example.com', '443', true],
    ['a.test, b.test', 'b.test', '443', true],
    ['a.test b.test', 'b.test', '443', true],
    ['example.com:5000', 'example.com', '5000', true],
    ['example.com:5000', 'example.com', '443', false],
    ['10.1.2.3', '10.1.2.3', '443', true],
    ['10.1.2.3', '10.1.2.4', '443', false],
    ['10.1.2.3:80', '10.1.2.3', '80', true],
    ['10.0.0.0/8', '10.200.1.1', '443', true],
    ['10.0.0.0/8', '11.0.0.1', '443', false],
    ['10.0.0.0/8', 'ten.example', '443', false],
    ['10.0.0.0/8', '::ffff:10.1.2.3', '443', true],
    ['fd00::/8', 'fd12::1', '443', true],
    ['fd00::/8', 'fe80::1', '443', false],
    ['2001:db8::1', '2001:db8:0:0:0:0:0:1', '443', true],
    ['[2001:db8::1]:443', '2001:db8::1', '443', true],
    ['', 'example.com', '443', false],
  ];
  for (const [noProxy, host, port, expected] of cases) assert.equal(bypassed(noProxy, host, port), expected, `${JSON.stringify(noProxy)} vs ${host}:${port}`);
  assert.equal(via({ HTTPS_PROXY: 'http://p:1', NO_PROXY: 'docker.io' }, 'https://registry-1.docker.io/v2/'), undefined);
  assert.equal(via({ HTTPS_PROXY: 'http://p:1', no_proxy: '.docker.io' }, 'https://ghcr.io/v2/'), 'http://p:1/');
});

test('bad proxy values are usage errors that never echo credentials; shownProxy drops them', () => {
  assert.throws(() => proxyConfigFromEnv({ HTTPS_PROXY: 'socks5://u:secret@p:1080' }), (e: unknown) => {
    assert.ok(e instanceof StowageError);
    assert.equal(e.code, 'usage/proxy');
    assert.doesNotMatch(`${e.message} ${e.hint}`, /secret/);
    return true;
  });
  assert.throws(() => proxyConfigFromEnv({ HTTP_PROXY: 'http://[bad' }), (e: unknown) => e instanceof StowageError && !/\[bad/.test(e.message));
  assert.equal(shownProxy(new URL('http://user:secret@proxy.corp:3128/')), 'http://proxy.corp:3128');
});
