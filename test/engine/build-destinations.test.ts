import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDestination, writeDestinations, applyLabels } from '../../src/engine/build-image.js';
import { scratchImage } from '../../src/engine/base-image.js';
import { StowageError } from '../../src/util/errors.js';

test('destinations: oci:<dir>[:tag], docker-archive:<file>[:ref], otherwise a registry ref', () => {
  assert.deepEqual(parseDestination('oci:/out/app'), { kind: 'oci', dir: '/out/app', tag: 'latest', text: 'oci:/out/app' });
  assert.deepEqual(parseDestination('oci:out/app:v1'), { kind: 'oci', dir: 'out/app', tag: 'v1', text: 'oci:out/app:v1' });
  assert.deepEqual(parseDestination('docker-archive:/o/a.tar'), { kind: 'docker-archive', file: '/o/a.tar', refs: [], text: 'docker-archive:/o/a.tar' });
  assert.deepEqual(parseDestination('docker-archive:/o/a.tar:reg.example/a:1'), { kind: 'docker-archive', file: '/o/a.tar', refs: ['reg.example/a:1'], text: 'docker-archive:/o/a.tar:reg.example/a:1' });
  assert.deepEqual(parseDestination('localhost:5000/a/b:1'), { kind: 'registry', ref: 'localhost:5000/a/b:1', text: 'localhost:5000/a/b:1' });
  assert.throws(() => parseDestination('oci:'), /names no directory/);
  assert.throws(() => parseDestination('oci:/x:'), /empty tag/);
  assert.throws(() => parseDestination('docker-archive:'), /names no file/);
});

test('a registry destination without a pusher is an error that says how to fix it', async () => {
  const image = scratchImage({ os: 'linux', architecture: 'amd64' });
  await assert.rejects(writeDestinations(image, ['localhost:5000/a:1'], { signal: new AbortController().signal }), (e: unknown) => {
    assert.ok(e instanceof StowageError);
    assert.equal(e.code, 'build/no-push');
    assert.match(e.hint ?? '', /--no-push|oci:/);
    return true;
  });
});

test('labels merge over the image labels and change the digest only when given', () => {
  const image = scratchImage({ os: 'linux', architecture: 'amd64' });
  assert.equal(applyLabels(image, {}), image);
  const labelled = applyLabels(image, { a: '1' });
  assert.notEqual(labelled.digest, image.digest);
  assert.deepEqual(labelled.config.config!.Labels, { a: '1' });
  assert.deepEqual(applyLabels(labelled, { b: '2', a: 'x' }).config.config!.Labels, { a: 'x', b: '2' });
  assert.deepEqual(labelled.config.history, undefined, 'no history entry for --label');
});
