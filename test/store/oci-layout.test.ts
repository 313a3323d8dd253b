import { test } from 'node:test';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Layer } from '../../src/image/blob.js';
import { sha256Digest } from '../../src/image/digest.js';
import { toDockerMediaTypes } from '../../src/image/image.js';
import { MediaType } from '../../src/image/media-types.js';
import { hostPlatform } from '../../src/image/platform.js';
import type { ImageIndex } from '../../src/image/types.js';
import { FsBlobStore } from '../../src/store/blob-store.js';
import {
  listLayoutTags,
  parseOciReference,
  readImageFromLayout,
  REF_NAME,
  writeImageToLayout,
  writeIndexToLayout,
} from '../../src/store/oci-layout.js';
import { isStowageError } from '../../src/util/errors.js';
import { makeImage, run, tempDir } from './helpers.js';

const platform = hostPlatform();

async function readIndex(dir: string): Promise<ImageIndex> {
  return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as ImageIndex;
}

async function readAll(l: Layer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await l.open()) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('parseOciReference splits at the first colon, as skopeo does', () => {
  assert.deepEqual(parseOciReference('oci:out'), { dir: 'out' });
  assert.deepEqual(parseOciReference('oci:/tmp/out:v1'), { dir: '/tmp/out', tag: 'v1' });
  assert.deepEqual(parseOciReference('oci:out:a/b:c'), { dir: 'out', tag: 'a/b:c' });
  assert.throws(() => parseOciReference('oci:out:bad tag'), (e) => isStowageError(e) && e.code === 'store/invalid-reference');
  assert.throws(() => parseOciReference('oci::v1'), /names no directory/);
  assert.throws(() => parseOciReference('docker://x'), /not an oci: reference/);
});

test('a written layout is accepted by skopeo and umoci, and what skopeo copies reads back', async (t) => {
  const root = await tempDir(t);
  const store = await FsBlobStore.open(join(root, 'cache'));
  const image = await makeImage(store, [{ 'etc/': '', 'etc/hello': 'hi\n' }, { 'usr/': '', 'usr/bin/': '', 'usr/bin/tool': '#!/bin/sh\n' }], {
    platform,
    cmd: ['/usr/bin/tool'],
  });
  const layout = join(root, 'layout');
  assert.equal(await writeImageToLayout(layout, image, { tags: ['v1'] }), image.digest);

  const index = await readIndex(layout);
  assert.equal(index.manifests.length, 1);
  assert.equal(index.manifests[0]!.annotations?.[REF_NAME], 'v1');
  assert.equal(index.manifests[0]!.digest, image.digest);
  assert.deepEqual(JSON.parse(await readFile(join(layout, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  assert.deepEqual((await readdir(layout)).sort(), ['blobs', 'index.json', 'oci-layout'], 'no temp or lock files left');

  const inspect = JSON.parse((await run('skopeo', ['inspect', `oci:${layout}:v1`])).stdout) as { Digest: string; Layers: string[]; Architecture: string };
  assert.equal(inspect.Digest, image.digest);
  assert.deepEqual(inspect.Layers, image.manifest.layers.map((l) => l.digest));
  assert.equal(inspect.Architecture, platform.architecture);

  const bundle = join(root, 'bundle');
  await run('umoci', ['unpack', '--rootless', '--image', `${layout}:v1`, bundle]);
  assert.equal(await readFile(join(bundle, 'rootfs', 'etc', 'hello'), 'utf8'), 'hi\n');
  assert.equal(await readFile(join(bundle, 'rootfs', 'usr', 'bin', 'tool'), 'utf8'), '#!/bin/sh\n');
  const runtime = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { args: string[] } };
  assert.deepEqual(runtime.process.args, ['/usr/bin/tool']);

  // skopeo copy re-serialises the manifest; our reader must accept its layout.
  const copy = join(root, 'copy');
  await run('skopeo', ['copy', '--quiet', `oci:${layout}:v1`, `oci:${copy}:x`]);
  const back = await readImageFromLayout(copy, { tag: 'x', platform });
  assert.deepEqual(back.config.rootfs.diff_ids, image.config.rootfs.diff_ids);
  assert.deepEqual(back.config.config?.Cmd, ['/usr/bin/tool']);
  assert.equal(back.layers.length, 2);
  for (const [i, l] of back.layers.entries()) {
    assert.equal(sha256Digest(await readAll(l)), l.descriptor.digest, `layer ${i} bytes match their descriptor`);
    assert.equal(l.diffId, image.layers[i]!.diffId);
  }
  // Our own write reads back to the identical image.
  const own = await readImageFromLayout(layout, { platform });
  assert.equal(own.digest, image.digest);
  assert.deepEqual(own.manifestBytes, image.manifestBytes);
});

test('adding a tag keeps the others; re-using a tag replaces only that entry; blobs are shared', async (t) => {
  const root = await tempDir(t);
  const store = await FsBlobStore.open(join(root, 'cache'));
  const shared = { 'etc/': '', 'etc/base': 'base\n' };
  const one = await makeImage(store, [shared, { 'one.txt': '1' }], { platform });
  const two = await makeImage(store, [shared, { 'two.txt': '2' }], { platform });
  const three = await makeImage(store, [shared, { 'three.txt': '3' }], { platform });
  const layout = join(root, 'layout');
  await writeImageToLayout(layout, one, { tags: ['one'] });
  const baseBlob = join(layout, 'blobs', 'sha256', one.layers[0]!.descriptor.digest.slice(7));
  const before = await stat(baseBlob);
  await writeImageToLayout(layout, two, { tags: ['two', 'latest'] });
  assert.equal((await stat(baseBlob)).ino, before.ino, 'an existing blob is kept, not rewritten');
  assert.deepEqual(await listLayoutTags(layout), ['one', 'two', 'latest']);
  await writeImageToLayout(layout, three, { tags: ['latest'] });
  assert.deepEqual(await listLayoutTags(layout), ['one', 'two', 'latest']);
  const index = await readIndex(layout);
  assert.equal(index.manifests.find((m) => m.annotations?.[REF_NAME] === 'latest')?.digest, three.digest);

  assert.equal((await readImageFromLayout(layout, { tag: 'one', platform })).digest, one.digest);
  assert.equal((await readImageFromLayout(layout, { tag: 'two', platform })).digest, two.digest);
  const inspect = JSON.parse((await run('skopeo', ['inspect', `oci:${layout}:one`])).stdout) as { Digest: string };
  assert.equal(inspect.Digest, one.digest, 'the first tag still resolves for skopeo');

  await assert.rejects(readImageFromLayout(layout, { tag: 'twoo', platform }), (e) => isStowageError(e) && e.code === 'store/tag-not-found' && /did you mean "two"/.test(e.hint ?? ''));
  await assert.rejects(readImageFromLayout(layout, { platform }), (e) => isStowageError(e) && e.code === 'store/ambiguous-layout');
});

test('concurrent writers to one layout keep every tag', async (t) => {
  const root = await tempDir(t);
  const store = await FsBlobStore.open(join(root, 'cache'));
  const images = await Promise.all([0, 1, 2, 3].map((i) => makeImage(store, [{ [`f${i}`]: String(i) }], { platform })));
  const layout = join(root, 'layout');
  await Promise.all(images.map((img, i) => writeImageToLayout(layout, img, { tags: [`t${i}`] })));
  assert.deepEqual((await listLayoutTags(layout)).sort(), ['t0', 't1', 't2', 't3']);
});

test('a lock left by a dead writer is broken; a live one is waited for', async (t) => {
  const root = await tempDir(t);
  const store = await FsBlobStore.open(join(root, 'cache'));
  const img = await makeImage(store, [{ a: 'a' }], { platform });
  const layout = join(root, 'layout');
  await writeImageToLayout(layout, img, { tags: ['first'] });
  // A process that has exited: its pid is (almost certainly) not reused within this test.
  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => dead.on('exit', r));
  await writeFile(join(layout, '.index.json.lock'), `${dead.pid}\n`);
  await writeImageToLayout(layout, img, { tags: ['second'] });
  assert.deepEqual(await listLayoutTags(layout), ['first', 'second']);
  assert.deepEqual((await readdir(layout)).sort(), ['blobs', 'index.json', 'oci-layout']);

  // Held by a live process (us): the writer waits until it is released.
  await writeFile(join(layout, '.index.json.lock'), `${process.pid}\n`);
  let done = false;
  const writing = writeImageToLayout(layout, img, { tags: ['third'] }).then(() => (done = true));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(done, false);
  await rm(join(layout, '.index.json.lock'));
  await writing;
  assert.deepEqual(await listLayoutTags(layout), ['first', 'second', 'third']);
});

test('a multi-platform index, copied by skopeo --all (nested index), resolves per platform', async (t) => {
  const root = await tempDir(t);
  const store = await FsBlobStore.open(join(root, 'cache'));
  const amd = await makeImage(store, [{ arch: 'amd64' }], { platform: { os: 'linux', architecture: 'amd64' } });
  const arm = await makeImage(store, [{ arch: 'arm64' }], { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
  const layout = join(root, 'layout');
  const indexDigest = await writeIndexToLayout(layout, [amd, arm], { tags: ['multi'] });
  const top = await readIndex(layout);
  assert.equal(top.manifests[0]!.mediaType, MediaType.OciIndex);
  assert.equal(top.manifests[0]!.digest, indexDigest);

  const copy = join(root, 'copy');
  await run('skopeo', ['copy', '--quiet', '--all', `oci:${layout}:multi`, `oci:${copy}:m`]);
  const armBack = await readImageFromLayout(copy, { tag: 'm', platform: { os: 'linux', architecture: 'arm64' } });
  assert.equal(armBack.config.architecture, 'arm64');
  assert.equal(armBack.digest, arm.digest);
  const amdBack = await readImageFromLayout(copy, { tag: 'm', platform: { os: 'linux', architecture: 'amd64' } });
  assert.equal(amdBack.digest, amd.digest);
  await assert.rejects(
    readImageFromLayout(copy, { tag: 'm', platform: { os: 'linux', architecture: 's390x' } }),
    (e) => isStowageError(e) && e.code === 'image/platform-not-found' && /linux\/amd64, linux\/arm64/.test(e.hint ?? ''),
  );
});

test('a corrupt layer source is rejected and no index entry points at missing blobs', async (t) => {
  const root = await tempDir(t);
  const store = await FsBlobStore.open(join(root, 'cache'));
  const good = await makeImage(store, [{ a: 'a' }], { platform });
  const layout = join(root, 'layout');
  await writeImageToLayout(layout, good, { tags: ['good'] });
  const img = await makeImage(store, [{ b: 'b' }], { platform });
  // A streamed source (not a verified store file, which is copied without re-hashing) that lies.
  const { descriptor, diffId } = img.layers[0]!;
  const lying: Layer = { descriptor, diffId, open: async () => Readable.from([Buffer.from('not the layer')]) };
  await assert.rejects(
    writeImageToLayout(layout, { ...img, layers: [lying] }, { tags: ['bad'] }),
    (e) => isStowageError(e) && (e.code === 'store/digest-mismatch' || e.code === 'store/size-mismatch'),
  );
  assert.deepEqual(await listLayoutTags(layout), ['good']);
  assert.deepEqual((await readdir(layout)).sort(), ['blobs', 'index.json', 'oci-layout'], 'the temp file is gone');
  assert.equal(await stat(join(layout, 'blobs', 'sha256', img.layers[0]!.descriptor.digest.slice(7))).catch(() => undefined), undefined);
});

test('refuses to write into a directory that is not a layout; reports missing layer blobs on read', async (t) => {
  const root = await tempDir(t);
  const store = await FsBlobStore.open(join(root, 'cache'));
  const img = await makeImage(store, [{ a: 'a' }], { platform });
  const notLayout = join(root, 'src');
  await mkdir(notLayout);
  await writeFile(join(notLayout, 'main.c'), 'int main;');
  await assert.rejects(writeImageToLayout(notLayout, img, { tags: ['x'] }), (e) => isStowageError(e) && e.code === 'store/not-a-layout');
  assert.deepEqual(await readdir(notLayout), ['main.c']);
  await assert.rejects(readImageFromLayout(notLayout, { platform }), (e) => isStowageError(e) && e.code === 'store/not-a-layout');

  const layout = join(root, 'layout');
  await writeImageToLayout(layout, img, { tags: ['x'] });
  // An existing layout may hold other files (and a dead writer's temp file); it is still written to.
  await writeFile(join(layout, 'README'), 'notes');
  const staleTemp = join(layout, '.stowage-tmp-0123456789abcdef-1-aaaa');
  await writeFile(staleTemp, 'partial');
  const old = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
  await utimes(staleTemp, old, old);
  await writeImageToLayout(layout, img, { tags: ['y'] });
  assert.deepEqual((await readdir(layout)).sort(), ['README', 'blobs', 'index.json', 'oci-layout']);
  await rm(join(layout, 'blobs', 'sha256', img.layers[0]!.descriptor.digest.slice(7)));
  await assert.rejects(readImageFromLayout(layout, { tag: 'x', platform }), (e) => isStowageError(e) && e.code === 'store/blob-not-found');
});

test('a Docker-media-type image is stored with OCI media types, which skopeo requires', async (t) => {
  const root = await tempDir(t);
  const store = await FsBlobStore.open(join(root, 'cache'));
  const oci = await makeImage(store, [{ a: 'a' }], { platform });
  const docker = toDockerMediaTypes(oci);
  const layout = join(root, 'layout');
  assert.equal(await writeImageToLayout(layout, docker, { tags: ['d'] }), oci.digest);
  const raw = JSON.parse((await run('skopeo', ['inspect', '--raw', `oci:${layout}:d`])).stdout) as { mediaType: string };
  assert.equal(raw.mediaType, MediaType.OciManifest);
  assert.equal((await readImageFromLayout(layout, { tag: 'd', platform })).digest, oci.digest);
});
