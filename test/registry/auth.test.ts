import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, chmod, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  dockerConfigCredentials,
  parseChallenge,
  scopeSetKey,
  scopesForPush,
  tokenRefreshAt,
} from '../../src/registry/auth.js';
import { RegistryClient } from '../../src/registry/client.js';
import { classifyStatus, parseRetryAfter, retryDelayMs, DEFAULT_RETRY_POLICY, MAX_MANIFEST_BYTES } from '../../src/registry/errors.js';
import { pushImage } from '../../src/registry/push.js';
import { pullImage, fetchManifest } from '../../src/registry/pull.js';
import { parseReference } from '../../src/registry/reference.js';
import { startRegistry } from '../helpers/registry.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { StowageError } from '../../src/util/errors.js';
import { makeImage, randomLayer, tempStore } from './fixtures.js';

test('parseChallenge reads Bearer and Basic challenges, including insufficient_scope', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), {
    scheme: 'bearer',
    realm: 'https://auth.docker.io/token',
    service: 'registry.docker.io',
    scope: 'repository:library/busybox:pull',
  });
  assert.deepEqual(parseChallenge('Basic realm="x"'), { scheme: 'basic', realm: 'x' });
  assert.equal(parseChallenge('Bearer realm="r",error="insufficient_scope"')?.error, 'insufficient_scope');
  assert.equal(parseChallenge('Negotiate abc'), undefined);
});

test('push scopes come first, source pull scopes after; scope-set keys are order-independent', () => {
  assert.deepEqual(scopesForPush('dst', ['z/src', 'a/src', 'dst']), ['repository:dst:pull,push', 'repository:a/src:pull', 'repository:z/src:pull']);
  assert.equal(scopeSetKey(['repository:b:pull', 'repository:a:pull,push']), scopeSetKey(['repository:a:pull,push', 'repository:b:pull', 'repository:b:pull']));
  assert.equal(scopeSetKey(['repository:b:pull', 'repository:a:pull,push']).split(' ')[0], 'repository:a:pull,push');
});

test('tokens refresh at 80% of their lifetime, with a 60 s floor', () => {
  assert.equal(tokenRefreshAt(0, 300), 240_000);
  assert.equal(tokenRefreshAt(0, 5), 48_000);
  assert.equal(tokenRefreshAt(0, undefined), 48_000);
});

test('retry classification: 429/5xx retried, 500 on uploads not, Retry-After seconds or date, capped', () => {
  assert.deepEqual(classifyStatus(503, { hasBody: false }), { kind: 'retry' });
  assert.deepEqual(classifyStatus(429, { hasBody: false, retryAfter: '3' }), { kind: 'retry', retryAfterMs: 3000 });
  assert.deepEqual(classifyStatus(500, { hasBody: true }), { kind: 'fail' });
  assert.deepEqual(classifyStatus(404, { hasBody: false }), { kind: 'fail' });
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6_000);
  assert.equal(retryDelayMs(1, DEFAULT_RETRY_POLICY, 600_000, 0.5), 60_000);
  assert.equal(retryDelayMs(3, DEFAULT_RETRY_POLICY, undefined, 0.5), 1000);
  assert.equal(retryDelayMs(30, DEFAULT_RETRY_POLICY, undefined, 0.999), Math.floor(0.999 * 30_000));
});

test('plain HTTP only for loopback and listed insecure registries', () => {
  const c = new RegistryClient({ credentials: async () => undefined, insecureRegistries: ['myreg.internal:5000'] });
  assert.equal(c.originOf('localhost:5000'), 'http://localhost:5000');
  assert.equal(c.originOf('127.0.0.1:1234'), 'http://127.0.0.1:1234');
  assert.equal(c.originOf('myreg.internal:5000'), 'http://myreg.internal:5000');
  assert.equal(c.originOf('myreg.internal:5001'), 'https://myreg.internal:5001');
  assert.equal(c.originOf('docker.io'), 'https://registry-1.docker.io');
});

describe('docker config credentials', () => {
  test('auths (base64 auth, legacy Hub key), credHelpers and credsStore via docker-credential-* helpers, DOCKER_CONFIG', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-dockercfg-'));
    try {
      const bin = join(dir, 'bin');
      await mkdir(bin);
      // A real helper program speaking docker's protocol: server URL on stdin, JSON on stdout.
      const helper = (user: string) => `#!/bin/sh\nread server\ncase "$server" in\n  *missing*) echo "credentials not found in native keychain"; exit 1;;\nesac\nprintf '{"ServerURL":"%s","Username":"${user}","Secret":"s3cret-for-%s"}' "$server" "$server"\n`;
      await writeFile(join(bin, 'docker-credential-helperone'), helper('helper-user'));
      await writeFile(join(bin, 'docker-credential-storeall'), helper('store-user'));
      await chmod(join(bin, 'docker-credential-helperone'), 0o755);
      await chmod(join(bin, 'docker-credential-storeall'), 0o755);
      await writeFile(
        join(dir, 'config.json'),
        JSON.stringify({
          auths: {
            'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hub:pass').toString('base64') },
            'reg.example.com': { auth: Buffer.from('alice:pw').toString('base64') },
            'https://other.example.com/v2/': { username: 'bob', password: 'pw2' },
          },
          credHelpers: { 'ghcr.io': 'helperone' },
          credsStore: 'storeall',
        }),
      );
      const creds = dockerConfigCredentials({ env: { DOCKER_CONFIG: dir, PATH: `${bin}:${process.env.PATH}` } });
      assert.deepEqual(await creds('docker.io'), { username: 'hubuser', password: 'hub:pass' });
      assert.deepEqual(await creds('reg.example.com'), { username: 'alice', password: 'pw' });
      assert.deepEqual(await creds('other.example.com'), { username: 'bob', password: 'pw2' });
      assert.deepEqual(await creds('ghcr.io'), { username: 'helper-user', password: 's3cret-for-ghcr.io' });
      assert.deepEqual(await creds('quay.io'), { username: 'store-user', password: 's3cret-for-quay.io' });
      assert.equal(await creds('missing.example.com'), undefined);
      const none = dockerConfigCredentials({ env: { DOCKER_CONFIG: join(dir, 'nope'), HOME: dir } });
      assert.equal(await none('docker.io'), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('auth and limits against the real registry', () => {
  test('an expired token is refreshed when the registry rejects it', async () => {
    const reg = await startRegistry({ auth: 'token', tokenExpiresIn: 1 });
    const client = new RegistryClient({ credentials: async () => ({ username: reg.username, password: reg.password }) });
    try {
      const image = makeImage([await randomLayer(500)]);
      await pushImage(image, { registry: reg.host, repository: 'tok/app', tags: ['a'] }, { client });
      const before = reg.tokenIssuer!.requests.length;
      // Our cache keeps the token for 48 s (60 s floor); the registry stops accepting it after 1 s.
      await sleep(2100);
      const m = await fetchManifest(client, parseReference(`${reg.host}/tok/app:a`));
      assert.equal(m.digest, image.digest);
      assert.ok(reg.tokenIssuer!.requests.length > before, 'a new token was fetched');
      assert.ok(reg.tokenIssuer!.requests.every((r) => r.user === reg.username));
    } finally {
      await client.close();
      await reg.stop();
    }
  });

  test('manifests over 4 MiB are refused; unknown hosts say so', async () => {
    const reg = await startRegistry();
    const proxy = await startFaultProxy({ upstream: reg.url });
    const client = new RegistryClient({ credentials: async () => undefined, retry: { baseDelayMs: 1, maxDelayMs: 2, maxAttempts: 2 } });
    const { store, cleanup } = await tempStore();
    try {
      proxy.addRule({ method: 'GET', path: /\/manifests\//, times: Infinity, action: { kind: 'respond', status: 200, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: ' '.repeat(MAX_MANIFEST_BYTES + 1) } });
      await assert.rejects(pullImage(parseReference(`${proxy.host}/big/m:t`), { client, store }), (e: unknown) => {
        assert.ok(e instanceof StowageError);
        assert.equal(e.code, 'registry/manifest-too-large');
        assert.match(e.message, new RegExp(`^${proxy.host}/big/m: .*exceeds the 4 MiB limit$`));
        return true;
      });
      await assert.rejects(pullImage(parseReference('no-such-registry.invalid/a/b:c'), { client, store }), (e: unknown) => {
        assert.ok(e instanceof StowageError);
        assert.equal(e.code, 'registry/unknown-host');
        assert.match(e.message, /no-such-registry\.invalid\/a\/b: .*could not be resolved/);
        return true;
      });
      await assert.rejects(pullImage(parseReference(`${reg.host}/never/pushed:t`), { client, store }), (e: unknown) => {
        assert.ok(e instanceof StowageError);
        assert.equal(e.code, 'registry/not-found');
        assert.match(e.message, new RegExp(`${reg.host}/never/pushed`));
        return true;
      });
    } finally {
      await cleanup();
      await client.close();
      await proxy.stop();
      await reg.stop();
    }
  });
});
