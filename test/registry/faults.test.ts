import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { RegistryClient } from '../../src/registry/client.js';
import { pushImage } from '../../src/registry/push.js';
import { pullImage } from '../../src/registry/pull.js';
import { parseReference } from '../../src/registry/reference.js';
import { StowageError } from '../../src/util/errors.js';
import { makeImage, randomLayer, tempStore } from './fixtures.js';

// Faults are injected by a real proxy in front of the real registry; retries use tiny backoffs.
describe('registry faults through a proxy', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let client: RegistryClient;
  before(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy({ upstream: reg.url });
  });
  after(async () => {
    await proxy?.stop();
    await reg?.stop();
  });
  beforeEach(async () => {
    await client?.close();
    proxy.clearRules();
    proxy.requests.length = 0;
    client = new RegistryClient({ credentials: async () => undefined, retry: { baseDelayMs: 5, maxDelayMs: 20 } });
  });
  after(async () => {
    await client?.close();
  });

  test('a connection dropped mid-upload is recovered by restarting the blob sequence', async () => {
    const layer = await randomLayer(200_000);
    const image = makeImage([layer]);
    const rule = proxy.addRule({ method: 'PUT', path: new RegExp(`digest=${encodeURIComponent(layer.descriptor.digest)}`), action: { kind: 'drop-request', afterBytes: 50_000 } });
    const pushed = await pushImage(image, { registry: proxy.host, repository: 'faults/drop', tags: ['t'] }, { client });
    assert.equal(rule.hits(), 1);
    assert.equal(pushed.stats.blobsUploaded, 2);
    // The dropped attempt sent bytes too; the retry sent the whole blob again.
    assert.ok(pushed.stats.bytesUploaded >= layer.descriptor.size + image.configBytes.length + 50_000 / 2);
    // After the failure: HEAD before re-uploading, then a NEW session (POST).
    const afterDrop = proxy.requests.slice(proxy.requests.findIndex((r) => r.fault === 'drop-request') + 1).filter((r) => r.path.includes(layer.descriptor.digest.slice(7, 20)) || r.method === 'POST');
    assert.deepEqual(afterDrop.slice(0, 1).map((r) => r.method), ['HEAD']);
    const { store, cleanup } = await tempStore();
    try {
      const { image: pulled } = await pullImage(parseReference(`${proxy.host}/faults/drop:t`), { client, store });
      assert.equal(pulled.digest, image.digest);
    } finally {
      await cleanup();
    }
  });

  test('429 with Retry-After is retried after the time the server asked for', async () => {
    const image = makeImage([await randomLayer(1000)]);
    await pushImage(image, { registry: proxy.host, repository: 'faults/ratelimit', tags: ['t'] }, { client });
    const rule = proxy.addRule({ method: 'GET', path: /\/manifests\//, action: { kind: 'respond', status: 429, headers: { 'retry-after': '1', 'content-type': 'application/json' }, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' } });
    const { store, cleanup } = await tempStore();
    try {
      const { image: pulled } = await pullImage(parseReference(`${proxy.host}/faults/ratelimit:t`), { client, store });
      assert.equal(pulled.digest, image.digest);
      assert.equal(rule.hits(), 1);
      const manifestGets = proxy.requests.filter((r) => r.method === 'GET' && r.path.includes('/manifests/'));
      assert.equal(manifestGets[0]!.status, 429);
      // Our own backoff is ≤20 ms here, so a gap of ~1 s can only come from honouring Retry-After.
      assert.ok(manifestGets[1]!.at - manifestGets[0]!.at >= 900, `retried after ${manifestGets[1]!.at - manifestGets[0]!.at} ms`);
    } finally {
      await cleanup();
    }
  });

  test('a burst of 503s on upload start and blob HEAD is ridden out', async () => {
    const image = makeImage([await randomLayer(3000)]);
    const post = proxy.addRule({ method: 'POST', path: /\/blobs\/uploads\//, times: 3, action: { kind: 'respond', status: 503, body: 'busy' } });
    const head = proxy.addRule({ method: 'HEAD', path: /\/blobs\//, times: 2, action: { kind: 'respond', status: 503 } });
    const pushed = await pushImage(image, { registry: proxy.host, repository: 'faults/burst', tags: ['t'] }, { client });
    assert.equal(post.hits(), 3);
    assert.equal(head.hits(), 2);
    assert.equal(pushed.stats.blobsUploaded, 2);
    const { store, cleanup } = await tempStore();
    try {
      assert.equal((await pullImage(parseReference(`${proxy.host}/faults/burst:t`), { client, store })).image.digest, image.digest);
    } finally {
      await cleanup();
    }
  });

  test('a corrupted blob body is detected and never stored', async () => {
    const layer = await randomLayer(20_000);
    const image = makeImage([layer]);
    await pushImage(image, { registry: proxy.host, repository: 'faults/corrupt', tags: ['t'] }, { client });
    proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${layer.descriptor.digest}`), times: Infinity, action: { kind: 'corrupt-response' } });
    const { store, dir, cleanup } = await tempStore();
    try {
      await assert.rejects(pullImage(parseReference(`${proxy.host}/faults/corrupt:t`), { client, store }), (e: unknown) => {
        assert.ok(e instanceof StowageError);
        assert.equal(e.code, 'registry/digest-mismatch');
        assert.match(e.message, new RegExp(`${proxy.host}/faults/corrupt: .*${layer.descriptor.digest}`));
        return true;
      });
      assert.equal(await store.has(layer.descriptor.digest), false);
      assert.deepEqual(await readdir(join(dir, 'cache', 'tmp')), []);
    } finally {
      await cleanup();
    }
  });

  test('a download cut mid-body resumes with Range from where it stopped', async () => {
    const layer = await randomLayer(300_000);
    const image = makeImage([layer]);
    await pushImage(image, { registry: proxy.host, repository: 'faults/resume', tags: ['t'] }, { client });
    proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${layer.descriptor.digest}`), action: { kind: 'drop-response', afterBytes: 100_000 } });
    const { store, cleanup } = await tempStore();
    try {
      const { image: pulled } = await pullImage(parseReference(`${proxy.host}/faults/resume:t`), { client, store });
      assert.equal(pulled.digest, image.digest);
      assert.equal(await store.has(layer.descriptor.digest), true);
      const gets = proxy.requests.filter((r) => r.method === 'GET' && r.path.includes(layer.descriptor.digest));
      assert.equal(gets.length, 2);
      assert.equal(gets[0]!.fault, 'drop-response');
      // The proxy sends 100,000 bytes then resets the connection; a reset may discard some of them in
      // flight, so the client resumes from what it really received — more than nothing, at most that.
      const resumedAt = Number(/^bytes=(\d+)-$/.exec(String(gets[1]!.headers.range))?.[1]);
      assert.ok(resumedAt > 0 && resumedAt <= 100_000, `resumed with ${String(gets[1]!.headers.range)}`);
      assert.equal(gets[1]!.status, 206);
    } finally {
      await cleanup();
    }
  });

  test('a server answering HTML is reported as not a registry, in one line', async () => {
    proxy.addRule({ path: /^\/v2\/$/, times: Infinity, action: { kind: 'respond', status: 200, headers: { 'content-type': 'text/html' }, body: '<!doctype html><title>Login</title>' } });
    proxy.addRule({ path: /\/manifests\//, times: Infinity, action: { kind: 'respond', status: 404, headers: { 'content-type': 'text/html' }, body: '<!doctype html><h1>Not here</h1>' } });
    const { store, cleanup } = await tempStore();
    try {
      await assert.rejects(pullImage(parseReference(`${proxy.host}/faults/html:t`), { client, store }), (e: unknown) => {
        assert.ok(e instanceof StowageError);
        assert.equal(e.code, 'registry/not-a-registry');
        assert.match(e.message, new RegExp(`${proxy.host}/faults/html`));
        assert.doesNotMatch(e.message, /\n|doctype/);
        return true;
      });
    } finally {
      await cleanup();
    }
  });
});

describe('chunked uploads and cancellation', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  before(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy({ upstream: reg.url });
  });
  after(async () => {
    await proxy?.stop();
    await reg?.stop();
  });

  test('blobs above the monolithic threshold go up in PATCH chunks; a 413 on a monolithic PUT switches to chunks', async () => {
    const client = new RegistryClient({ credentials: async () => undefined, retry: { baseDelayMs: 1, maxDelayMs: 5 } });
    try {
      const big = await randomLayer(100_000);
      const image = makeImage([big]);
      const pushed = await pushImage(image, { registry: proxy.host, repository: 'chunks/a', tags: ['t'] }, { client, monolithicMaxBytes: 50_000, chunkBytes: 40_000 });
      assert.equal(pushed.stats.blobsUploaded, 2);
      const patches = proxy.requests.filter((r) => r.method === 'PATCH');
      assert.equal(patches.length, Math.ceil(big.descriptor.size / 40_000));
      assert.deepEqual(patches.map((r) => r.headers['content-range']), patches.map((_, i) => `${i * 40_000}-${Math.min((i + 1) * 40_000, big.descriptor.size) - 1}`));

      proxy.requests.length = 0;
      const other = await randomLayer(30_000);
      const image2 = makeImage([other]);
      const tooLarge = proxy.addRule({ method: 'PUT', path: new RegExp(`digest=${encodeURIComponent(other.descriptor.digest)}`), action: { kind: 'respond', status: 413, body: 'too large' } });
      await pushImage(image2, { registry: proxy.host, repository: 'chunks/b', tags: ['t'] }, { client, chunkBytes: 8_000 });
      assert.equal(tooLarge.hits(), 1);
      assert.ok(proxy.requests.some((r) => r.method === 'PATCH'), 'switched to PATCH after 413');
      const { store, cleanup } = await tempStore();
      try {
        assert.equal((await pullImage(parseReference(`${proxy.host}/chunks/a:t`), { client, store })).image.digest, image.digest);
        assert.equal((await pullImage(parseReference(`${proxy.host}/chunks/b:t`), { client, store })).image.digest, image2.digest);
      } finally {
        await cleanup();
      }
    } finally {
      await client.close();
    }
  });

  test('an aborted push stops with an AbortError and tags nothing', async () => {
    const client = new RegistryClient({ credentials: async () => undefined });
    try {
      const image = makeImage([await randomLayer(1000)]);
      // Hold every upload start for a moment so the abort lands mid-push.
      proxy.addRule({ method: 'POST', times: Infinity, action: { kind: 'respond', status: 503, headers: { 'retry-after': '5' } } });
      const ac = new AbortController();
      const pushing = pushImage(image, { registry: proxy.host, repository: 'abort/a', tags: ['t'] }, { client, signal: ac.signal });
      setTimeout(() => ac.abort(), 100);
      await assert.rejects(pushing, (e: unknown) => (e as Error).name === 'AbortError');
      proxy.clearRules();
      assert.ok(proxy.requests.some((r) => r.path.startsWith('/v2/abort/a/blobs/uploads/')));
      assert.ok(!proxy.requests.some((r) => r.path.startsWith('/v2/abort/a/manifests/') && r.method === 'PUT'));
    } finally {
      await client.close();
    }
  });
});

describe('redirects', () => {
  test('blob GETs follow a redirect to another origin without sending Authorization there', async () => {
    const authed = await startRegistry({ auth: 'htpasswd' });
    const open = await startRegistry();
    const front = await startFaultProxy({ upstream: authed.url });
    const storage = await startFaultProxy({ upstream: open.url });
    const client = new RegistryClient({ credentials: async () => ({ username: authed.username, password: authed.password }) });
    const { store, cleanup } = await tempStore();
    try {
      const layer = await randomLayer(10_000);
      const image = makeImage([layer]);
      await pushImage(image, { registry: authed.host, repository: 'redir/app', tags: ['t'] }, { client });
      // The "storage backend" (another origin) holds the same bytes, like S3 behind a registry.
      await pushImage(image, { registry: open.host, repository: 'redir/app', tags: ['t'] }, { client });
      front.addRule({
        method: 'GET',
        path: new RegExp(`/blobs/${layer.descriptor.digest}`),
        action: { kind: 'respond', status: 307, headers: { location: `${storage.url}/v2/redir/app/blobs/${layer.descriptor.digest}` } },
      });
      const { image: pulled } = await pullImage(parseReference(`${front.host}/redir/app:t`), { client, store });
      assert.equal(pulled.digest, image.digest);
      const redirected = storage.requests.filter((r) => r.path.includes(layer.descriptor.digest));
      assert.equal(redirected.length, 1);
      assert.equal(redirected[0]!.status, 200);
      assert.equal(redirected[0]!.headers.authorization, undefined);
      // …while the registry itself did get credentials.
      assert.ok(front.requests.some((r) => r.path.includes('/manifests/') && typeof r.headers.authorization === 'string'));
    } finally {
      await cleanup();
      await client.close();
      await front.stop();
      await storage.stop();
      await authed.stop();
      await open.stop();
    }
  });
});
