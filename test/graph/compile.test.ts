import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJsonString } from '../../src/image/canonical.js';
import { vertexIdentityJson, type VertexIdentity } from '../../src/graph/compile.js';

test('vertex identities are written exactly as canonical JSON writes them (ids must not change)', () => {
  const cases: VertexIdentity[] = [
    { v: 1, dockerfile: 'sha256:ab', stage: 0, context: '.', platform: 'linux/amd64', args: {}, base: { kind: 'scratch' }, baseLabels: undefined, dependsOn: [], external: [] },
    {
      v: 1,
      dockerfile: 'sha256:cd',
      stage: 3,
      context: 'services/svc "quoted" \\ back',
      platform: 'linux/arm/v7',
      args: { Z: 'last', A: 'first', a: 'lower', 'ü': 'ünïcode \u2028 \ud83d\ude00', _x: '', '10': 'digits', '9': 'nine' },
      base: { kind: 'vertex', vertex: '0123456789abcdef', image: 'base-1' },
      baseLabels: { 'org.opencontainers.image.source': 'https://example.invalid', B: 'b', A: 'a\n"' },
      dependsOn: ['0123456789abcdef', 'fedcba9876543210'],
      external: ['docker.io/library/alpine:3', 'ghcr.io/x/y@sha256:00'],
    },
    { v: 1, dockerfile: 'sha256:ef', stage: 1, context: '../outside', platform: 'linux/amd64', args: { K: 'v' }, base: { kind: 'vertex', vertex: 'aaaa' }, baseLabels: {}, dependsOn: ['aaaa'], external: [] },
    { v: 1, dockerfile: 'sha256:ef', stage: 2, context: 'x', platform: 'linux/amd64', args: {}, base: { kind: 'image', ref: 'registry.example:5000/a/b:1' }, baseLabels: undefined, dependsOn: [], external: ['\u0000odd\u001f'] },
  ];
  for (const c of cases) assert.equal(vertexIdentityJson(c), canonicalJsonString(c));
});
