import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDestination, writeDestinations, applyLabels } from '../../src/engine/build-image.js';
import { scratchImage } from '../../src/engine/base-image.js';
import { StowageError } from '../../src/util/errors.js';
import { parseDestination as parseSpecDestination } from '../../src/spec/destination.js';
import { parseDockerArchiveReference, parseOciReference } from '../../src/store/references.js';
import { resolve } from 'node:path';

test('destinations: oci:<dir>[:tag], docker-archive:<file>[:ref], otherwise a registry ref', () => {
  assert.deepEqual(parseDestination('oci:/out/app'), { kind: 'oci', dir: '/out/app', tag: 'latest', text: 'oci:/out/app' });
  assert.deepEqual(parseDestination('oci:out/app:v1'), { kind: 'oci', dir: 'out/app', tag: 'v1', text: 'oci:out/app:v1' });
  assert.deepEqual(parseDestination('docker-archive:/o/a.tar'), { kind: 'docker-archive', file: '/o/a.tar', refs: [], text: 'docker-archive:/o/a.tar' });
  assert.deepEqual(parseDestination('docker-archive:/o/a.tar:reg.example/a:1'), { kind: 'docker-archive', file: '/o/a.tar', refs: ['reg.example/a:1'], text: 'docker-archive:/o/a.tar:reg.example/a:1' });
  assert.deepEqual(parseDestination('localhost:5000/a/b:1'), { kind: 'registry', ref: 'localhost:5000/a/b:1', text: 'localhost:5000/a/b:1' });
  assert.throws(() => parseDestination('oci:'), /names no directory/);
  assert.throws(() => parseDestination('oci:/x:'), /invalid OCI layout tag ""/);
  assert.throws(() => parseDestination('docker-archive:'), /names no file/);
});

test('spec destinations, executor --destination and stowage copy read oci: and docker-archive: names alike', () => {
  const cases = ['oci:out/app', 'oci:out/app:v1', 'oci:out:reg.example/team/app:1.0', 'oci:/abs/dir:a/b', 'docker-archive:a.tar', 'docker-archive:a.tar:app', 'docker-archive:a.tar:localhost:5000/team/app:1.2'];
  for (const text of cases) {
    const spec = parseSpecDestination(text, '/base');
    const engine = parseDestination(text);
    assert.ok(spec.ok, text);
    if (text.startsWith('oci:')) {
      const store = parseOciReference(text);
      assert.equal(spec.value.kind, 'oci');
      assert.equal(engine.kind, 'oci');
      if (spec.value.kind !== 'oci' || engine.kind !== 'oci') continue;
      assert.equal(spec.value.dir, resolve('/base', store.dir), text);
      assert.equal(engine.dir, store.dir, text);
      assert.equal(spec.value.tag, store.tag, text);
      assert.equal(engine.tag, store.tag ?? 'latest', text);
    } else {
      const store = parseDockerArchiveReference(text);
      assert.equal(spec.value.kind, 'docker-archive');
      assert.equal(engine.kind, 'docker-archive');
      if (spec.value.kind !== 'docker-archive' || engine.kind !== 'docker-archive') continue;
      assert.equal(spec.value.file, resolve('/base', store.file), text);
      assert.equal(spec.value.ref, store.ref, text);
      assert.deepEqual(engine.refs, store.ref === undefined ? [] : [store.ref], text);
    }
  }
  // The same names are refused by all three, with the same message.
  for (const text of ['oci:', 'oci:x:bad tag', 'docker-archive:', 'docker-archive:a.tar:Upper/Case']) {
    const spec = parseSpecDestination(text, '/base');
    assert.ok(!spec.ok, text);
    assert.throws(() => parseDestination(text), (e: unknown) => e instanceof StowageError && e.message === spec.message, text);
  }
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
