import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { Layer } from '../../src/image/blob.js';
import { sha256Digest, type Digest } from '../../src/image/digest.js';
import { bytesBlob, imageFromBytes, imageFromParts, toDockerMediaTypes, toOciMediaTypes } from '../../src/image/image.js';
import { ExtraMediaType, MediaType } from '../../src/image/media-types.js';
import {
  appendHistory,
  appendLayer,
  buildIndex,
  buildManifest,
  DEFAULT_PATH,
  emptyImageConfig,
  patchConfig,
  type ImageDraft,
} from '../../src/image/mutate.js';
import type { Descriptor, ImageConfig } from '../../src/image/types.js';
import { isStowageError } from '../../src/util/errors.js';

function fakeLayer(name: string, mediaType: string = MediaType.OciLayerGzip): Layer {
  const bytes = new TextEncoder().encode(name);
  const descriptor: Descriptor = { mediaType, digest: sha256Digest(bytes), size: bytes.length };
  return { descriptor, diffId: sha256Digest(`diff-${name}`), open: async () => Readable.from([Buffer.from(bytes)]) };
}

const linux = { os: 'linux', architecture: 'amd64' };

test('scratch config: PATH and WorkingDir "/", no layers, platform fields', () => {
  const c = emptyImageConfig({ os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.deepEqual(c, {
    architecture: 'arm',
    os: 'linux',
    variant: 'v7',
    config: { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [] },
  });
});

test('appendLayer and appendHistory return new objects and keep history aligned with layers', () => {
  const base = emptyImageConfig(linux);
  const snapshot = structuredClone(base);
  const l1 = fakeLayer('one');
  let draft: ImageDraft<Layer> = { config: base, layers: [] };
  draft = appendLayer(draft, l1, { created_by: 'COPY a /', empty_layer: true });
  const withEnv = appendHistory(draft.config, { created_by: 'ENV A=1' });
  assert.deepEqual(base, snapshot, 'the base config is untouched');
  assert.deepEqual(draft.config.rootfs.diff_ids, [l1.diffId]);
  assert.deepEqual(draft.config.history, [{ created_by: 'COPY a /' }], 'a layer entry is never marked empty');
  assert.deepEqual(withEnv.history, [{ created_by: 'COPY a /' }, { created_by: 'ENV A=1', empty_layer: true }]);
  assert.equal(draft.config.history?.length, 1, 'appendHistory did not modify its input');
});

test('a base without history gets blank entries for its layers first', () => {
  const base: ImageConfig = { ...emptyImageConfig(linux), rootfs: { type: 'layers', diff_ids: [sha256Digest('a'), sha256Digest('b')] } };
  const next = appendLayer({ config: base, layers: [fakeLayer('a'), fakeLayer('b')] }, fakeLayer('c'), { created_by: 'RUN x' });
  assert.deepEqual(next.config.history, [{ created_by: '' }, { created_by: '' }, { created_by: 'RUN x' }]);
});

test('patchConfig sets keys, removes keys given as undefined, keeps the rest', () => {
  const base = emptyImageConfig(linux);
  const a = patchConfig(base, { Cmd: ['sh'], Entrypoint: ['/init'] });
  const b = patchConfig(a, { Cmd: undefined, User: '1000' });
  assert.deepEqual(b.config, { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: '/', Entrypoint: ['/init'], User: '1000' });
  assert.deepEqual(a.config?.Cmd, ['sh']);
  assert.equal(base.config?.Cmd, undefined);
});

test('buildManifest converts every media type to the chosen family', () => {
  const config: Descriptor = { mediaType: MediaType.OciConfig, digest: sha256Digest('c'), size: 1 };
  const layers = [fakeLayer('a').descriptor, fakeLayer('b', MediaType.OciLayer).descriptor];
  const docker = buildManifest(config, layers, { format: 'docker' });
  assert.equal(docker.mediaType, MediaType.DockerManifest);
  assert.equal(docker.config.mediaType, MediaType.DockerConfig);
  assert.deepEqual(docker.layers.map((l) => l.mediaType), [MediaType.DockerLayerGzip, ExtraMediaType.DockerLayer]);
  const oci = buildManifest(docker.config, docker.layers, { format: 'oci' });
  assert.deepEqual(oci.layers, layers);
  assert.equal(oci.config.mediaType, MediaType.OciConfig);
  assert.throws(
    () => buildManifest(config, [fakeLayer('z', MediaType.OciLayerZstd).descriptor], { format: 'docker' }),
    (e) => isStowageError(e) && e.code === 'image/unsupported-media-type',
  );
  assert.throws(() => buildManifest(config, [{ ...config }], { format: 'oci' }), /not a layer type/);
});

test('imageFromParts: canonical config and manifest bytes, digests that match them, stable across calls', () => {
  const l1 = fakeLayer('one');
  const draft = appendLayer({ config: emptyImageConfig(linux), layers: [] as Layer[] }, l1, { created_by: 'x' });
  const img = imageFromParts({ config: draft.config, layers: draft.layers, format: 'oci' });
  assert.equal(img.digest, sha256Digest(img.manifestBytes));
  assert.equal(img.manifest.config.digest, sha256Digest(img.configBytes));
  assert.equal(img.manifest.config.size, img.configBytes.byteLength);
  assert.deepEqual(img.manifest.layers, [l1.descriptor]);
  assert.equal(imageFromParts({ config: structuredClone(draft.config), layers: draft.layers, format: 'oci' }).digest, img.digest);
  assert.throws(
    () => imageFromParts({ config: emptyImageConfig(linux), layers: [l1], format: 'oci' }),
    (e) => isStowageError(e) && e.code === 'image/diffid-mismatch',
  );
});

test('toDockerMediaTypes converts the whole image; layers keep bytes and diffIds; round-trips', async () => {
  const l1 = fakeLayer('one');
  const draft = appendLayer({ config: emptyImageConfig(linux), layers: [] as Layer[] }, l1, {});
  const oci = imageFromParts({ config: draft.config, layers: draft.layers, format: 'oci' });
  const docker = toDockerMediaTypes(oci);
  assert.notEqual(docker.digest, oci.digest);
  assert.equal(docker.digest, sha256Digest(docker.manifestBytes));
  assert.equal(docker.manifest.mediaType, MediaType.DockerManifest);
  assert.equal(docker.layers[0]!.descriptor.mediaType, MediaType.DockerLayerGzip);
  assert.equal(docker.layers[0]!.diffId, l1.diffId);
  const chunks: Buffer[] = [];
  for await (const c of await docker.layers[0]!.open()) chunks.push(c as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), 'one');
  assert.equal(toOciMediaTypes(docker).digest, oci.digest, 'converting back gives the same manifest');
  assert.equal(toDockerMediaTypes(docker), docker, 'already Docker: unchanged');
});

test('imageFromBytes keeps exact bytes and rejects a config that does not match the manifest', () => {
  const l1 = fakeLayer('one');
  const draft = appendLayer({ config: emptyImageConfig(linux), layers: [] as Layer[] }, l1, {});
  const img = imageFromParts({ config: draft.config, layers: draft.layers, format: 'oci' });
  const spaced = new TextEncoder().encode(JSON.stringify(img.manifest, null, 2));
  const again = imageFromBytes({ manifestBytes: spaced, configBytes: img.configBytes, layer: (d, diffId) => ({ descriptor: d, diffId, open: l1.open }) });
  assert.equal(again.digest, sha256Digest(spaced));
  assert.equal(again.layers[0]!.diffId, l1.diffId);
  assert.throws(
    () => imageFromBytes({ manifestBytes: spaced, configBytes: new TextEncoder().encode('{}'), layer: () => l1 }),
    (e) => isStowageError(e) && e.code === 'image/digest-mismatch',
  );
  assert.ok(bytesBlob(img.manifest.config, img.configBytes).descriptor === img.manifest.config);
});

test('buildIndex requires platforms and uses the family media type', () => {
  const m: Descriptor = { mediaType: MediaType.OciManifest, digest: sha256Digest('m') as Digest, size: 3, platform: linux };
  assert.equal(buildIndex([m], { format: 'oci' }).mediaType, MediaType.OciIndex);
  const list = buildIndex([m], { format: 'docker' });
  assert.equal(list.mediaType, MediaType.DockerManifestList);
  assert.equal(list.manifests[0]!.mediaType, MediaType.DockerManifest);
  assert.throws(() => buildIndex([{ ...m, platform: undefined }], { format: 'oci' }), /has no platform/);
});
