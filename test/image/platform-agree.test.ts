/**
 * The spec's `platforms`, FROM --platform and the engine read a platform string through one
 * normalisation (containerd's): the three must name the same platform, or a stage built for
 * linux/x86_64 would not match an image built for linux/amd64.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePlatform as parseStagePlatform } from '../../src/dockerfile/analyze.js';
import { formatPlatform, parsePlatform } from '../../src/image/platform.js';
import { normalizePlatform as normalizeSpecPlatform } from '../../src/spec/platform.js';

const cases: Array<[string, string]> = [
  ['linux/amd64', 'linux/amd64'],
  ['linux/x86_64', 'linux/amd64'],
  ['LINUX/AMD64', 'linux/amd64'],
  ['linux/aarch64', 'linux/arm64'],
  ['linux/arm64/v8', 'linux/arm64'],
  ['linux/armhf', 'linux/arm/v7'],
  ['linux/arm', 'linux/arm/v7'],
  ['linux/arm/v6', 'linux/arm/v6'],
  ['linux/i386', 'linux/386'],
  ['linux/i686', 'linux/386'],
  ['linux/amd64/v3', 'linux/amd64/v3'],
];

test('spec, Dockerfile and engine normalise a platform string the same way', () => {
  for (const [text, want] of cases) {
    const spec = normalizeSpecPlatform(text);
    assert.deepEqual(spec, { ok: true, platform: want }, `spec: ${text}`);
    assert.equal(formatPlatform(parsePlatform(text)), want, `engine: ${text}`);
    const stage = parseStagePlatform(text);
    assert.ok(stage, `FROM --platform=${text} parses`);
    assert.equal(formatPlatform(stage), want, `FROM --platform: ${text}`);
  }
});

test('what the spec refuses, FROM --platform refuses too (no architecture, empty parts)', () => {
  for (const text of ['linux', 'linux/', '/amd64', 'linux/amd64/v8/x']) {
    assert.equal(normalizeSpecPlatform(text).ok, false, `spec: ${text}`);
    assert.equal(parseStagePlatform(text), undefined, `FROM --platform: ${text}`);
  }
});
