import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { RegistryClient } from '../../src/registry/client.js';
import { staticCredentials } from '../../src/registry/auth.js';
import { Pusher, pushImage } from '../../src/registry/push.js';
import { pullImage } from '../../src/registry/pull.js';
import { parseReference } from '../../src/registry/reference.js';
import { writeImageToLayout } from '../../src/store/oci-layout.js';
import { StowageError } from '../../src/util/errors.js';
import { makeImage, makeImageFor, makeIndex, randomLayer, tempStore } from './fixtures.js';

const run = promisify(execFile);

async function skopeo(args: string[]): Promise<string> {
  const { stdout } = await run('skopeo', ['--insecure-policy', ...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

describe('interop with skopeo (token-auth registry)', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  let creds: string;
  before(async () => {
    reg = await startRegistry({ auth: 'token' });
    creds = `${reg.username}:${reg.password}`;
    client = new RegistryClient({ credentials: staticCredentials({ [reg.host]: { username: reg.username, password: reg.password } }) });
  });
  after(async () => {
    await client?.close();
    await reg?.stop();
  });

  test('skopeo inspects what we pushed: same digest, layers and config', async () => {
    const layers = [await randomLayer(3000), await randomLayer(5000)];
    const image = makeImage(layers, { format: 'docker' });
    await pushImage(image, { registry: reg.host, repository: 'interop/ours', tags: ['v1'] }, { client });
    const info = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--creds', creds, `docker://${reg.host}/interop/ours:v1`])) as {
      Digest: string;
      Layers: string[];
      Architecture: string;
    };
    assert.equal(info.Digest, image.digest);
    assert.deepEqual(info.Layers, layers.map((l) => l.descriptor.digest));
    assert.equal(info.Architecture, 'amd64');
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', creds, `docker://${reg.host}/interop/ours:v1`]);
    assert.equal(raw, Buffer.from(image.manifestBytes).toString('utf8'));
  });

  test('we pull what skopeo copy pushed', async () => {
    const layer = await randomLayer(8000);
    const image = makeImage([layer]);
    const { store, dir, cleanup } = await tempStore();
    try {
      await writeImageToLayout(join(dir, 'layout'), image, { tags: ['src'] });
      await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${join(dir, 'layout')}:src`, `docker://${reg.host}/interop/theirs:s1`]);
      const { image: pulled } = await pullImage(parseReference(`${reg.host}/interop/theirs:s1`), { client, store });
      assert.deepEqual(pulled.layers.map((l) => l.descriptor.digest), [layer.descriptor.digest]);
      assert.equal(pulled.config.rootfs.diff_ids[0], layer.diffId);
      assert.equal(await store.has(layer.descriptor.digest), true);
    } finally {
      await cleanup();
    }
  });

  test('a multi-platform index is pushed children-first and the platform is chosen on pull', async () => {
    const amd = makeImageFor({ os: 'linux', architecture: 'amd64' }, [await randomLayer(1000)]);
    const arm = makeImageFor({ os: 'linux', architecture: 'arm64' }, [await randomLayer(1000)]);
    const index = makeIndex([amd, arm]);
    const pusher = new Pusher({ client });
    const [res] = await pusher.pushAll([{ registry: reg.host, repository: 'interop/multi', tags: ['m'], root: index }]);
    assert.equal(res!.digest, index.digest);
    const raw = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', creds, `docker://${reg.host}/interop/multi:m`])) as { manifests: { digest: string }[] };
    assert.deepEqual(raw.manifests.map((m) => m.digest), [amd.digest, arm.digest]);

    const { store, cleanup } = await tempStore();
    try {
      const ref = parseReference(`${reg.host}/interop/multi:m`);
      const arm64 = await pullImage(ref, { client, store, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
      assert.equal(arm64.image.digest, arm.digest);
      assert.equal(arm64.resolvedDigest, index.digest);
      await assert.rejects(pullImage(ref, { client, store, platform: { os: 'linux', architecture: 's390x' } }), (e: unknown) => {
        assert.ok(e instanceof StowageError);
        assert.equal(e.code, 'registry/no-matching-platform');
        assert.match(e.message, /no image for platform linux\/s390x \(available: linux\/amd64, linux\/arm64\)/);
        return true;
      });
    } finally {
      await cleanup();
    }
  });
});
