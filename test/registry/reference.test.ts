import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReference, formatReference, registryApiHost } from '../../src/registry/reference.js';
import { StowageError } from '../../src/util/errors.js';

const D = 'sha256:' + 'ab'.repeat(32);

const VALID: [string, { registry: string; repository: string; tag?: string; digest?: string }][] = [
  ['busybox', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
  ['busybox:1.36', { registry: 'docker.io', repository: 'library/busybox', tag: '1.36' }],
  ['library/busybox', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
  ['user/app:v1', { registry: 'docker.io', repository: 'user/app', tag: 'v1' }],
  ['docker.io/busybox', { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
  ['index.docker.io/user/app', { registry: 'docker.io', repository: 'user/app', tag: 'latest' }],
  ['localhost/app', { registry: 'localhost', repository: 'app', tag: 'latest' }],
  ['localhost:5000/app', { registry: 'localhost:5000', repository: 'app', tag: 'latest' }],
  ['127.0.0.1:5000/a/b/c:t', { registry: '127.0.0.1:5000', repository: 'a/b/c', tag: 't' }],
  ['ghcr.io/o/r', { registry: 'ghcr.io', repository: 'o/r', tag: 'latest' }],
  [`ghcr.io/o/r@${D}`, { registry: 'ghcr.io', repository: 'o/r', digest: D }],
  [`ghcr.io/o/r:1.0@${D}`, { registry: 'ghcr.io', repository: 'o/r', tag: '1.0', digest: D }],
  [`busybox@${D}`, { registry: 'docker.io', repository: 'library/busybox', digest: D }],
  ['reg.example.com:443/a_b/c.d/e__f/g-h--i:T_1.x-y', { registry: 'reg.example.com:443', repository: 'a_b/c.d/e__f/g-h--i', tag: 'T_1.x-y' }],
  // "foo" has neither '.' nor ':' nor is localhost, so it is a Docker Hub namespace.
  ['foo/bar', { registry: 'docker.io', repository: 'foo/bar', tag: 'latest' }],
];

for (const [input, want] of VALID) {
  test(`parseReference(${JSON.stringify(input)})`, () => {
    assert.deepEqual({ ...parseReference(input) }, want);
  });
}

const INVALID: [string, RegExp][] = [
  ['', /empty/],
  ['Busybox', /must be lowercase/],
  ['localhost:5000/MyApp:v1', /"MyApp" must be lowercase/],
  ['busybox:-bad', /tag "-bad" is not valid/],
  ['busybox:' + 'x'.repeat(129), /tag .* is not valid/],
  ['busybox@sha256:abc', /digest "sha256:abc" is not sha256/],
  ['a//b', /empty path component/],
  ['a/-b', /path component "-b"/],
  ['reg.io/', /repository name is empty/],
  ['a/b_', /path component "b_"/],
  ['bad_host.io:99999x/a', /not valid/],
];

for (const [input, msg] of INVALID) {
  test(`parseReference rejects ${JSON.stringify(input.slice(0, 40))} with registry/invalid-reference`, () => {
    assert.throws(
      () => parseReference(input),
      (e: unknown) => e instanceof StowageError && e.code === 'registry/invalid-reference' && msg.test(e.message) && !e.message.includes('\n'),
    );
  });
}

test('formatReference round-trips the canonical form; docker.io talks to registry-1.docker.io', () => {
  assert.equal(formatReference(parseReference('busybox')), 'docker.io/library/busybox:latest');
  assert.equal(formatReference(parseReference(`localhost:5000/a:t@${D}`)), `localhost:5000/a:t@${D}`);
  assert.equal(registryApiHost('docker.io'), 'registry-1.docker.io');
  assert.equal(registryApiHost('localhost:5000'), 'localhost:5000');
});
