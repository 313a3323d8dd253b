import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { canonicalJson, canonicalJsonString, serialize } from '../../src/image/canonical.js';

test('keys are sorted at every depth, no whitespace, undefined members dropped', () => {
  const s = canonicalJsonString({ b: 1, a: { z: [3, { y: true, x: null }], c: 'é"\n' }, u: undefined });
  assert.equal(s, '{"a":{"c":"é\\"\\n","z":[3,{"x":null,"y":true}]},"b":1}');
});

test('equal values give identical bytes whatever the insertion order', () => {
  const one = canonicalJson({ architecture: 'amd64', os: 'linux', config: { Env: ['A=1'], Cmd: ['sh'] } });
  const two = canonicalJson({ config: { Cmd: ['sh'], Env: ['A=1'] }, os: 'linux', architecture: 'amd64' });
  assert.deepEqual(one, two);
  // Round-trips to the same value.
  assert.deepEqual(JSON.parse(new TextDecoder().decode(one)), { architecture: 'amd64', os: 'linux', config: { Env: ['A=1'], Cmd: ['sh'] } });
});

test('values JSON cannot represent faithfully are rejected, not silently changed', () => {
  assert.throws(() => canonicalJson({ a: Number.NaN }), /non-finite number at \$\.a/);
  assert.throws(() => canonicalJson([1, undefined]), /undefined array element/);
  assert.throws(() => canonicalJson({ f: () => 1 }), /cannot serialise a function/);
  assert.throws(() => canonicalJson({ n: 10n }), /bigint/);
});

test('serialize gives bytes, their sha256 digest and size', () => {
  const r = serialize({ schemaVersion: 2, mediaType: 'x' });
  assert.equal(new TextDecoder().decode(r.bytes), '{"mediaType":"x","schemaVersion":2}');
  assert.equal(r.size, r.bytes.byteLength);
  assert.equal(r.digest, `sha256:${createHash('sha256').update(r.bytes).digest('hex')}`);
});
