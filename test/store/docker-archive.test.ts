import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Layer } from '../../src/image/blob.js';
import { sha256Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { hostPlatform } from '../../src/image/platform.js';
import { FsBlobStore } from '../../src/store/blob-store.js';
import { normalizeArchiveRef, parseDockerArchiveReference, readDockerArchive, writeDockerArchive } from '../../src/store/docker-archive.js';
import { readImageFromLayout } from '../../src/store/oci-layout.js';
import { indexTar } from '../../src/store/tar-index.js';
import { isStowageError } from '../../src/util/errors.js';
import { makeImage, makeTar, run, tempDir } from './helpers.js';

const platform = hostPlatform();

async function readAll(l: Layer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await l.open()) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('docker-archive references and RepoTags names', () => {
  assert.deepEqual(parseDockerArchiveReference('docker-archive:out.tar'), { file: 'out.tar' });
  assert.deepEqual(parseDockerArchiveReference('docker-archive:/x/out.tar:app'), { file: '/x/out.tar', ref: 'app:latest' });
  assert.deepEqual(parseDockerArchiveReference('docker-archive:out.tar:localhost:5000/team/app:1.2'), { file: 'out.tar', ref: 'localhost:5000/team/app:1.2' });
  assert.equal(normalizeArchiveRef('localhost:5000/app'), 'localhost:5000/app:latest');
  assert.throws(() => normalizeArchiveRef('App:1'), (e) => isStowageError(e) && e.code === 'store/invalid-reference');
  assert.throws(() => normalizeArchiveRef('app@sha256:' + 'a'.repeat(64)), /digest cannot be stored/);
  assert.throws(() => parseDockerArchiveReference('oci:x'), /not a docker-archive/);
});

test('a written archive is accepted by skopeo, copies to a layout umoci unpacks, and reads back', async (t) => {
  const root = await tempDir(t);
  const store = await FsBlobStore.open(join(root, 'cache'));
  const image = await makeImage(store, [{ 'etc/': '', 'etc/hello': 'hi\n' }, { 'bin/': '', 'bin/app': 'app' }], { platform, cmd: ['/bin/app'] });
  const file = join(root, 'image.tar');
  await writeDockerArchive(file, image, { refs: ['myapp:1.0', 'myapp'] });
  assert.deepEqual(await readdir(root), ['cache', 'image.tar'], 'no temp file left');

  const members = await indexTar(file);
  const manifest = JSON.parse(await (async () => {
    const m = members.get('manifest.json')!;
    const buf = (await readFile(file)).subarray(m.offset, m.offset + m.size);
    return buf.toString('utf8');
  })()) as { Config: string; RepoTags: string[]; Layers: string[] }[];
  assert.equal(manifest.length, 1);
  assert.deepEqual(manifest[0]!.RepoTags, ['myapp:1.0', 'myapp:latest']);
  assert.equal(manifest[0]!.Config, `${image.manifest.config.digest.slice(7)}.json`);
  assert.equal(manifest[0]!.Layers.length, 2);

  for (const ref of ['', ':myapp:1.0', ':myapp:latest']) {
    const inspect = JSON.parse((await run('skopeo', ['inspect', `docker-archive:${file}${ref}`])).stdout) as { Layers: string[]; Architecture: string };
    // skopeo reports docker-archive layers by their uncompressed digests.
    assert.deepEqual(inspect.Layers, image.config.rootfs.diff_ids);
    assert.equal(inspect.Architecture, platform.architecture);
  }
  await assert.rejects(run('skopeo', ['inspect', `docker-archive:${file}:other:1`]));

  const layout = join(root, 'layout');
  await run('skopeo', ['copy', '--quiet', `docker-archive:${file}`, `oci:${layout}:copied`]);
  const bundle = join(root, 'bundle');
  await run('umoci', ['unpack', '--rootless', '--image', `${layout}:copied`, bundle]);
  assert.equal(await readFile(join(bundle, 'rootfs', 'etc', 'hello'), 'utf8'), 'hi\n');
  assert.equal(await readFile(join(bundle, 'rootfs', 'bin', 'app'), 'utf8'), 'app');
  assert.deepEqual((await readImageFromLayout(layout, { tag: 'copied', platform })).config.config?.Cmd, ['/bin/app']);

  const back = await readDockerArchive(file, { ref: 'myapp:1.0' });
  assert.equal(back.digest, image.digest, 'gzip layers kept as-is: the same OCI manifest comes back');
  assert.deepEqual(back.configBytes, image.configBytes);
  assert.deepEqual(await readAll(back.layers[1]!), await readAll(image.layers[1]!));
});

test('buildah (the containers/storage loader podman load uses) loads the archive with its files', async (t) => {
  const root = await tempDir(t);
  const store = await FsBlobStore.open(join(root, 'cache'));
  const image = await makeImage(store, [{ 'etc/': '', 'etc/hello': 'hi\n' }, { 'etc/second': '2' }], { platform });
  const file = join(root, 'image.tar');
  await writeDockerArchive(file, image, { refs: ['loadme:1'] });
  // vfs keeps layers as plain directories: no kernel mounts to clean up.
  const buildah = (...args: string[]) => run('buildah', ['--root', join(root, 'storage'), '--runroot', join(root, 'run'), '--storage-driver', 'vfs', ...args]);
  const id = (await buildah('pull', '-q', `docker-archive:${file}`)).stdout.trim();
  assert.equal(`sha256:${id}`, image.manifest.config.digest, 'the image ID is the config digest, as docker load reports it');
  assert.match((await buildah('images', '--format', '{{.Name}}:{{.Tag}}')).stdout, /localhost\/loadme:1/);
  const ctr = (await buildah('from', '-q', 'localhost/loadme:1')).stdout.trim();
  const mnt = (await buildah('mount', ctr)).stdout.trim();
  assert.equal(await readFile(join(mnt, 'etc', 'hello'), 'utf8'), 'hi\n');
  assert.equal(await readFile(join(mnt, 'etc', 'second'), 'utf8'), '2');
  await buildah('umount', ctr);
  await buildah('rm', ctr);
});

test('reads what skopeo writes: uncompressed layers, legacy symlinks, docker.io names', async (t) => {
  const root = await tempDir(t);
  const store = await FsBlobStore.open(join(root, 'cache'));
  const image = await makeImage(store, [{ a: 'a' }, { b: 'b' }], { platform });
  const ours = join(root, 'ours.tar');
  await writeDockerArchive(ours, image, { refs: [] });
  const theirs = join(root, 'theirs.tar');
  await run('skopeo', ['copy', '--quiet', `docker-archive:${ours}`, `docker-archive:${theirs}:foo:bar`]);

  const back = await readDockerArchive(theirs, { ref: 'foo:bar', format: 'docker' });
  assert.equal(back.manifest.mediaType, MediaType.DockerManifest);
  assert.deepEqual(back.layers.map((l) => l.diffId), image.config.rootfs.diff_ids);
  for (const l of back.layers) {
    assert.equal(sha256Digest(await readAll(l)), l.descriptor.digest);
    assert.equal(l.descriptor.digest, l.diffId, 'skopeo stores layers uncompressed');
  }
  const tarBytes = await readAll(back.layers[0]!);
  assert.deepEqual(tarBytes, await makeTar({ a: 'a' }));
  await assert.rejects(readDockerArchive(theirs, { ref: 'nope' }), (e) => isStowageError(e) && e.code === 'store/tag-not-found' && /foo:bar/.test(e.hint ?? ''));
  // Untagged and only image: no ref needed.
  assert.equal((await readDockerArchive(ours)).digest, image.digest);
});

test('a layer whose bytes do not match its descriptor fails the write and leaves no file', async (t) => {
  const root = await tempDir(t);
  const store = await FsBlobStore.open(join(root, 'cache'));
  const image = await makeImage(store, [{ a: 'a' }], { platform });
  const bad: Layer = { ...image.layers[0]!, open: async () => Readable.from([Buffer.alloc(image.layers[0]!.descriptor.size, 7)]) };
  const file = join(root, 'bad.tar');
  await assert.rejects(writeDockerArchive(file, { ...image, layers: [bad] }, { refs: ['x'] }), (e) => isStowageError(e) && e.code === 'store/digest-mismatch');
  assert.deepEqual(await readdir(root), ['cache']);
});

test('a corrupt or foreign archive is a clear error', async (t) => {
  const root = await tempDir(t);
  const notTar = join(root, 'junk.tar');
  await writeFile(notTar, Buffer.alloc(2048, 0x41));
  await assert.rejects(readDockerArchive(notTar), (e) => isStowageError(e) && e.code === 'store/invalid-archive');
  const plain = join(root, 'plain.tar');
  await writeFile(plain, await makeTar({ 'hello.txt': 'hi' }));
  await assert.rejects(readDockerArchive(plain), (e) => isStowageError(e) && /no manifest\.json/.test(e.message));
  await assert.rejects(readDockerArchive(join(root, 'missing.tar')), (e) => isStowageError(e) && e.code === 'store/archive-not-found');
});
