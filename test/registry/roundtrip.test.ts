import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, type TestRegistry, type RegistryAuth } from '../helpers/registry.js';
import { RegistryClient } from '../../src/registry/client.js';
import { staticCredentials } from '../../src/registry/auth.js';
import { Pusher, pushImage } from '../../src/registry/push.js';
import { pullImage } from '../../src/registry/pull.js';
import { parseReference } from '../../src/registry/reference.js';
import { isMountable, isFileBacked } from '../../src/image/blob.js';
import { StowageError } from '../../src/util/errors.js';
import { makeImage, randomLayer, tempStore } from './fixtures.js';

const noCreds = async () => undefined;

function clientFor(reg: TestRegistry, creds = true): RegistryClient {
  return new RegistryClient({
    credentials: creds ? staticCredentials({ [reg.host]: { username: reg.username, password: reg.password } }) : noCreds,
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
  });
}

for (const auth of ['none', 'htpasswd', 'token'] as RegistryAuth[]) {
  describe(`push then pull round trip (auth: ${auth})`, () => {
    let reg: TestRegistry;
    before(async () => {
      reg = await startRegistry({ auth });
    });
    after(async () => {
      await reg?.stop();
    });

    test('pushed image pulls back byte-identical, verified, with mountable store-backed layers', async () => {
      const layers = [await randomLayer(4096), await randomLayer(1000)];
      const image = makeImage(layers);
      const client = clientFor(reg);
      const { store, cleanup } = await tempStore();
      try {
        const pushed = await pushImage(image, { registry: reg.host, repository: 'rt/app', tags: ['v1'] }, { client });
        assert.equal(pushed.digest, image.digest);
        assert.equal(pushed.stats.blobsUploaded, 3); // 2 layers + config
        assert.equal(pushed.stats.bytesUploaded, layers[0]!.descriptor.size + layers[1]!.descriptor.size + image.configBytes.length);

        const { image: pulled, resolvedDigest } = await pullImage(parseReference(`${reg.host}/rt/app:v1`), { client, store });
        assert.equal(resolvedDigest, image.digest);
        assert.equal(pulled.digest, image.digest);
        assert.deepEqual(Buffer.from(pulled.manifestBytes), Buffer.from(image.manifestBytes));
        assert.deepEqual(Buffer.from(pulled.configBytes), Buffer.from(image.configBytes));
        for (const [i, l] of pulled.layers.entries()) {
          assert.equal(l.diffId, layers[i]!.diffId);
          assert.ok(isMountable(l) && l.source.registry === reg.host && l.source.repository === 'rt/app');
          assert.ok(isFileBacked(l));
          const chunks: Buffer[] = [];
          for await (const c of await l.open()) chunks.push(c as Buffer);
          assert.deepEqual(Buffer.concat(chunks), layers[i]!.bytes);
        }

        // Pulling again with a warm store: one HEAD resolves the tag, nothing is downloaded.
        const logBefore = (await reg.settledAccessLog()).length;
        const warm = await pullImage(parseReference(`${reg.host}/rt/app:v1`), { client, store });
        assert.equal(warm.image.digest, image.digest);
        assert.deepEqual((await reg.settledAccessLog(logBefore + 1)).slice(logBefore).map((e) => `${e.method} ${e.path}`), ['HEAD /v2/rt/app/manifests/v1']);

        // A second push of the same image sends no bytes: blobs are present and the tag already matches.
        const again = await pushImage(image, { registry: reg.host, repository: 'rt/app', tags: ['v1'] }, { client });
        assert.equal(again.stats.blobsUploaded, 0);
        assert.equal(again.stats.blobsPresent, 3);
        assert.equal(again.stats.bytesUploaded, 0);
        assert.equal(again.stats.tagsUnchanged, 1);
        assert.equal(again.stats.manifestsPut, 0);
      } finally {
        await client.close();
        await cleanup();
      }
    });

    if (auth !== 'none') {
      test('wrong credentials give one line naming registry and repository, never the password', async () => {
        const client = new RegistryClient({ credentials: staticCredentials({ [reg.host]: { username: reg.username, password: 'wrong-Pa55word' } }) });
        try {
          await assert.rejects(
            pushImage(makeImage([await randomLayer(100)]), { registry: reg.host, repository: 'rt/denied', tags: ['x'] }, { client }),
            (e: unknown) => {
              assert.ok(e instanceof StowageError);
              assert.equal(e.code, 'registry/unauthorized');
              assert.match(e.message, new RegExp(`${reg.host}/rt/denied`));
              assert.doesNotMatch(`${e.message} ${e.hint}`, /wrong-Pa55word|\n/);
              return true;
            },
          );
        } finally {
          await client.close();
        }
        const anonymous = new RegistryClient({ credentials: noCreds });
        const { store, cleanup } = await tempStore();
        try {
          await assert.rejects(pullImage(parseReference(`${reg.host}/rt/app:v1`), { client: anonymous, store }), (e: unknown) => {
            assert.ok(e instanceof StowageError);
            assert.equal(e.code, 'registry/unauthorized');
            assert.match(e.message, new RegExp(`^${reg.host}/rt/app: .*no credentials were found for ${reg.host}$`));
            return true;
          });
        } finally {
          await anonymous.close();
          await cleanup();
        }
      });
    }
  });
}

describe('dedup across repositories (token auth)', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({ auth: 'token' });
  });
  after(async () => {
    await reg?.stop();
  });

  test('a shared layer is uploaded once and mounted into the other repositories; requests counted', async () => {
    const shared = await randomLayer(50_000);
    const images = await Promise.all(['a', 'b', 'c'].map(async (n) => makeImage([shared, await randomLayer(500)], { label: n })));
    const client = clientFor(reg);
    try {
      const pusher = new Pusher({ client });
      const sent = images.map(() => 0);
      const results = await pusher.pushAll(images.map((image, i) => ({ registry: reg.host, repository: `dedup/r${i}`, tags: ['latest'], root: image, onBytesSent: (n: number) => void (sent[i]! += n) })));
      assert.deepEqual(results.map((r) => r.digest), images.map((i) => i.digest));
      const stats = pusher.stats()[reg.host]!;
      // Each push is told what it sent: its own layer and config, plus the shared layer for exactly one of them.
      const own = images.map((im) => im.layers[1]!.descriptor.size + im.configBytes.length);
      assert.deepEqual(sent.map((n, i) => n - own[i]!).sort((a, b) => a - b), [0, 0, shared.descriptor.size]);
      assert.equal(sent.reduce((a, b) => a + b, 0), stats.bytesUploaded);
      // shared once + 3 unique layers + 3 configs; the shared layer mounted into the 2 other repos.
      assert.equal(stats.blobsUploaded, 7);
      assert.equal(stats.blobsMounted, 2);
      const uniqueBytes = shared.descriptor.size + images.reduce((s, im) => s + im.layers[1]!.descriptor.size + im.configBytes.length, 0);
      assert.equal(stats.bytesUploaded, uniqueBytes);
      const log = await reg.settledAccessLog(stats.requests - reg.tokenIssuer!.requests.length + 1);
      const mounts = log.filter((e) => e.method === 'POST' && e.path.includes('mount=') && e.status === 201);
      assert.equal(mounts.length, 2);
      const sharedPuts = log.filter((e) => e.method === 'PUT' && e.path.includes(`digest=${encodeURIComponent(shared.descriptor.digest)}`));
      assert.equal(sharedPuts.length, 1);
      // Every registry request we made is in the access log (token fetches go to the issuer, not the registry).
      const tokenFetches = reg.tokenIssuer!.requests.length;
      assert.equal(stats.requests, log.length - 1 /* readiness probe */ + tokenFetches);
      // Each mount token asked for push on the target first and pull on the source: the repository
      // whose push uploaded the shared layer (whichever of the concurrent pushes got there first).
      const mountScopes = reg.tokenIssuer!.requests
        .map((r) => r.scopes)
        .filter((sc) => sc.length === 2 && /^repository:dedup\/r\d:pull,push$/.test(sc[0]!) && /^repository:dedup\/r\d:pull$/.test(sc[1]!));
      const scopesText = JSON.stringify(reg.tokenIssuer!.requests.map((r) => r.scopes));
      assert.equal(mountScopes.length, 2, scopesText);
      const sources = new Set(mountScopes.map((sc) => sc[1]!.split(':')[1]));
      const targets = new Set(mountScopes.map((sc) => sc[0]!.split(':')[1]));
      assert.equal(sources.size, 1, `both mounts read the one uploaded copy: ${scopesText}`);
      assert.equal(targets.size, 2, scopesText);
      assert.ok(![...targets].some((t) => sources.has(t)), `a repository does not mount from itself: ${scopesText}`);
      console.log(`dedup stats: ${JSON.stringify(stats)}; token fetches ${tokenFetches}`);

      // Every repo really holds the shared blob.
      const { store, cleanup } = await tempStore();
      try {
        for (let i = 0; i < 3; i++) {
          const { image } = await pullImage(parseReference(`${reg.host}/dedup/r${i}:latest`), { client, store });
          assert.equal(image.digest, images[i]!.digest);
        }
      } finally {
        await cleanup();
      }
    } finally {
      await client.close();
    }
  });
});

describe('single flight and concurrency limits', () => {
  test('concurrent targets needing the same blobs in one repo upload each blob once; a limit of 1 does not deadlock', async () => {
    const reg = await startRegistry();
    const client = clientFor(reg);
    try {
      const shared = await randomLayer(20_000);
      const image = makeImage([shared, await randomLayer(300)]);
      const pusher = new Pusher({ client, concurrencyPerRegistry: 1 });
      const other = makeImage([shared], { label: 'other' });
      await pusher.pushAll([
        { registry: reg.host, repository: 'sf/one', tags: ['a'], root: image },
        { registry: reg.host, repository: 'sf/one', tags: ['b'], root: image },
        { registry: reg.host, repository: 'sf/two', tags: ['c'], root: other },
      ]);
      const stats = pusher.stats()[reg.host]!;
      assert.equal(stats.blobsUploaded, 4); // shared, unique layer, two configs
      assert.equal(stats.blobsMounted, 1); // shared into sf/two
      const puts = (await reg.settledAccessLog()).filter((e) => e.method === 'PUT' && e.path.includes('/blobs/uploads/'));
      assert.equal(puts.length, 4);
    } finally {
      await client.close();
      await reg.stop();
    }
  });
});

describe('manifest PUT with a blob the registry lost', () => {
  test('MANIFEST_BLOB_UNKNOWN relinks the named blob and retries the PUT once', async () => {
    const { rm: rmFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const reg = await startRegistry();
    const client = clientFor(reg);
    try {
      const layer = await randomLayer(2000);
      const image = makeImage([layer]);
      const pusher = new Pusher({ client });
      await pusher.push({ registry: reg.host, repository: 'lost/app', tags: ['one'], root: image });
      // Unlink the layer from the repository behind the Pusher's back (what a GC or an admin might do).
      const hex = layer.descriptor.digest.slice('sha256:'.length);
      await rmFile(join(reg.storageDir, 'docker/registry/v2/repositories/lost/app/_layers/sha256', hex), { recursive: true });
      await pusher.push({ registry: reg.host, repository: 'lost/app', tags: ['two'], root: image });
      const log = await reg.settledAccessLog();
      const tagPuts = log.filter((e) => e.method === 'PUT' && e.path === '/v2/lost/app/manifests/two');
      assert.deepEqual(tagPuts.map((e) => e.status), [400, 201]);
      assert.equal(pusher.stats()[reg.host]!.blobsUploaded, 3); // layer + config, then the layer again
      const { store, cleanup } = await tempStore();
      try {
        assert.equal((await pullImage(parseReference(`${reg.host}/lost/app:two`), { client, store })).image.digest, image.digest);
      } finally {
        await cleanup();
      }
    } finally {
      await client.close();
      await reg.stop();
    }
  });
});
