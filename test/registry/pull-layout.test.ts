import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { RegistryClient } from '../../src/registry/client.js';
import { pushImage } from '../../src/registry/push.js';
import { runCopy } from '../../src/cli/copy.js';
import { sha256Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import type { ImageIndex, ImageManifest } from '../../src/image/types.js';
import { StowageError } from '../../src/util/errors.js';
import { makeImage, randomLayer } from './fixtures.js';

const run = promisify(execFile);

// `stowage copy REGISTRY oci:DIR` streams each blob once, straight into the layout. These tests pin
// what that must keep: every byte verified before a blob file appears, no temp file left behind,
// no cache copy, and a layout holding exactly what its index refers to.
describe('pull straight into an OCI layout', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy({ upstream: reg.url });
    dir = await mkdtemp(join(tmpdir(), 'stowage-pull-layout-'));
    await writeFile(join(dir, 'config.json'), '{}');
    env = { DOCKER_CONFIG: dir, STOWAGE_CACHE_DIR: join(dir, 'cache'), PATH: process.env.PATH };
  });
  after(async () => {
    await proxy?.stop();
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    proxy.clearRules();
    proxy.requests.length = 0;
  });

  async function push(image: ReturnType<typeof makeImage>, repository: string): Promise<void> {
    const client = new RegistryClient({ credentials: async () => undefined });
    try {
      await pushImage(image, { registry: proxy.host, repository, tags: ['t'] }, { client });
    } finally {
      await client.close();
    }
  }

  async function copy(...argv: string[]): Promise<string> {
    let out = '';
    const code = await runCopy(argv, { stdout: { write: (s: string) => (out += s) }, env });
    assert.equal(code, 0);
    return out;
  }

  async function blobNames(layout: string): Promise<string[]> {
    return (await readdir(join(layout, 'blobs', 'sha256'))).sort();
  }

  test('a corrupted layer fails the copy with no blob file, temp file or index for it; a clean retry completes the layout', async () => {
    const good = await randomLayer(30_000);
    const bad = await randomLayer(50_000);
    const image = makeImage([good, bad]);
    await push(image, 'layout/corrupt');
    const layout = join(dir, 'corrupt');
    // An existing (empty) directory: the failed copy keeps it; see the next test for a new path.
    await mkdir(layout);
    proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${bad.descriptor.digest}`), times: Infinity, action: { kind: 'corrupt-response' } });
    await assert.rejects(copy(`${proxy.host}/layout/corrupt:t`, `oci:${layout}:t`), (e: unknown) => {
      assert.ok(e instanceof StowageError);
      assert.equal(e.code, 'registry/digest-mismatch');
      assert.match(e.message, new RegExp(bad.descriptor.digest));
      return true;
    });
    const names = await readdir(layout);
    assert.deepEqual(names.filter((n) => n.startsWith('.stowage-tmp')), [], 'no temp file left in the layout');
    assert.ok(!names.includes('index.json'), 'nothing was published');
    assert.ok(!(await blobNames(layout)).includes(bad.descriptor.digest.slice(7)), 'the corrupt blob never appears under its digest');
    // Every blob file that is there holds exactly the bytes of its name.
    for (const name of await blobNames(layout)) {
      assert.equal(sha256Digest(await readFile(join(layout, 'blobs', 'sha256', name))), `sha256:${name}`);
    }

    proxy.clearRules();
    assert.equal((await copy('-q', `${proxy.host}/layout/corrupt:t`, `oci:${layout}:t`)).trim(), image.digest);
    // Exactly manifest, config and layers: nothing the index does not reach.
    assert.deepEqual(
      await blobNames(layout),
      [image.digest, image.manifest.config.digest, good.descriptor.digest, bad.descriptor.digest].map((d) => d.slice(7)).sort(),
    );
    assert.deepEqual(await readFile(join(layout, 'blobs', 'sha256', bad.descriptor.digest.slice(7))), bad.bytes);
    // The blobs went to the layout only, never through the cache.
    await assert.rejects(stat(join(dir, 'cache')), { code: 'ENOENT' });
    const inspected = JSON.parse((await run('skopeo', ['inspect', `oci:${layout}:t`])).stdout) as { Layers: string[] };
    assert.deepEqual(inspected.Layers, [good.descriptor.digest, bad.descriptor.digest]);
  });

  test('a failed copy into a path that did not exist leaves nothing there', async () => {
    const bad = await randomLayer(20_000);
    await push(makeImage([bad]), 'layout/fresh');
    const layout = join(dir, 'fresh', 'nested');
    proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${bad.descriptor.digest}`), times: Infinity, action: { kind: 'corrupt-response' } });
    await assert.rejects(copy(`${proxy.host}/layout/fresh:t`, `oci:${layout}:t`), { code: 'registry/digest-mismatch' });
    await assert.rejects(stat(layout), { code: 'ENOENT' });
    // A source that does not exist at all: same.
    await assert.rejects(copy(`${proxy.host}/layout/none:t`, `oci:${layout}:t`), { code: 'registry/not-found' });
    await assert.rejects(stat(layout), { code: 'ENOENT' });
  });

  test('a download cut mid-body resumes into the same temp file and the layer lands byte-identical', async () => {
    const layer = await randomLayer(400_000);
    const image = makeImage([layer]);
    await push(image, 'layout/resume');
    proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${layer.descriptor.digest}`), action: { kind: 'drop-response', afterBytes: 150_000 } });
    const layout = join(dir, 'resume');
    await copy(`${proxy.host}/layout/resume:t`, `oci:${layout}:t`);
    const gets = proxy.requests.filter((r) => r.method === 'GET' && r.path.includes(layer.descriptor.digest));
    assert.equal(gets.length, 2);
    assert.equal(gets[1]!.status, 206, 'the second GET was a ranged resume');
    assert.deepEqual(await readFile(join(layout, 'blobs', 'sha256', layer.descriptor.digest.slice(7))), layer.bytes);
    assert.deepEqual((await readdir(layout)).filter((n) => n.startsWith('.stowage-tmp')), []);
  });

  test('a Docker-typed image lands with OCI media types and without the Docker manifest blob', async () => {
    const layer = await randomLayer(5_000);
    const image = makeImage([layer], { format: 'docker' });
    await push(image, 'layout/docker');
    const layout = join(dir, 'docker');
    await copy(`${proxy.host}/layout/docker:t`, `oci:${layout}:t`);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as ImageIndex;
    const digest = index.manifests[0]!.digest;
    assert.notEqual(digest, image.digest, 'the manifest was converted');
    const manifest = JSON.parse(await readFile(join(layout, 'blobs', 'sha256', digest.slice(7)), 'utf8')) as ImageManifest;
    assert.equal(manifest.mediaType, MediaType.OciManifest);
    assert.deepEqual(await blobNames(layout), [digest, image.manifest.config.digest, layer.descriptor.digest].map((d) => d.slice(7)).sort());
  });
});
