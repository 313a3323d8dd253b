import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Descriptor, Platform } from '../../src/image/types.js';
import { sha256Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import {
  formatPlatform,
  hostPlatform,
  matchPlatform,
  normalizePlatform,
  parsePlatform,
  platformMatches,
  selectPlatform,
} from '../../src/image/platform.js';
import { isStowageError } from '../../src/util/errors.js';

function entry(name: string, platform: Platform, annotations?: Record<string, string>): Descriptor {
  const d: Descriptor = { mediaType: MediaType.OciManifest, digest: sha256Digest(name), size: 1, platform };
  if (annotations) d.annotations = annotations;
  return d;
}

test('normalisation folds aliases and the arm64/v8 and arm/v7 defaults', () => {
  assert.deepEqual(normalizePlatform({ os: 'Linux', architecture: 'x86_64' }), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'aarch64', variant: 'v8' }), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'arm' }), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'armhf' }), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' });
  assert.equal(formatPlatform(parsePlatform('linux/arm/v6')), 'linux/arm/v6');
  assert.throws(() => parsePlatform('linux/amd64/v1/x'), (e) => isStowageError(e) && e.code === 'image/invalid-platform');
  assert.throws(() => parsePlatform('linux'), /no architecture/);
  assert.deepEqual(parsePlatform('linux', { defaultArch: 'amd64' }), { os: 'linux', architecture: 'amd64' });
});

test('platformMatches: os and arch must agree; variants only when both name one', () => {
  assert.ok(platformMatches({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }));
  assert.ok(platformMatches({ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' }));
  assert.ok(!platformMatches({ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm', variant: 'v7' }));
  assert.ok(!platformMatches({ os: 'linux', architecture: 'amd64' }, { os: 'windows', architecture: 'amd64' }));
  assert.ok(!platformMatches({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }));
});

test('selectPlatform skips attestations and prefers the exact variant', () => {
  const amd = entry('amd', { os: 'linux', architecture: 'amd64' });
  const att = entry('att', { os: 'unknown', architecture: 'unknown' }, { 'vnd.docker.reference.type': 'attestation-manifest' });
  const v6 = entry('v6', { os: 'linux', architecture: 'arm', variant: 'v6' });
  const v7 = entry('v7', { os: 'linux', architecture: 'arm', variant: 'v7' });
  const arm64 = entry('arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' });
  const index = { manifests: [att, amd, v6, v7, arm64] };
  assert.equal(selectPlatform(index, { os: 'linux', architecture: 'amd64' }), amd);
  assert.equal(selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v7' }), v7);
  assert.equal(selectPlatform(index, { os: 'linux', architecture: 'arm' }), v7, 'bare arm means arm/v7');
  assert.equal(selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v6' }), v6);
  assert.equal(selectPlatform(index, { os: 'linux', architecture: 'arm64' }), arm64, 'arm64 finds arm64/v8');
  // A variant-less entry is a fallback, but only when nothing exact exists.
  const loose = entry('loose', { os: 'linux', architecture: 'arm64' });
  const exact = entry('exact', { os: 'linux', architecture: 'arm64', variant: 'v9' });
  assert.equal(selectPlatform({ manifests: [loose, exact] }, { os: 'linux', architecture: 'arm64', variant: 'v9' }), exact);
  assert.equal(selectPlatform({ manifests: [loose] }, { os: 'linux', architecture: 'arm64', variant: 'v9' }), loose);
});

test('a missing platform is an error listing the available ones; attestations are never chosen', () => {
  const att = entry('att', { os: 'unknown', architecture: 'unknown' });
  const amd = entry('amd', { os: 'linux', architecture: 'amd64' });
  assert.equal(matchPlatform({ manifests: [att] }, { os: 'unknown', architecture: 'unknown' }), undefined);
  assert.throws(
    () => selectPlatform({ manifests: [att, amd] }, { os: 'linux', architecture: 's390x' }),
    (e) => isStowageError(e) && e.code === 'image/platform-not-found' && /linux\/s390x/.test(e.message) && e.hint === 'available platforms: linux/amd64',
  );
});

test('hostPlatform maps Node architecture names to OCI ones', () => {
  assert.deepEqual(hostPlatform({ arch: 'x64', platform: 'linux' }), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(hostPlatform({ arch: 'arm64', platform: 'darwin' }), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(hostPlatform({ arch: 'arm', platform: 'linux' }), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.deepEqual(hostPlatform({ arch: 'ia32', platform: 'linux' }), { os: 'linux', architecture: '386' });
  assert.equal(hostPlatform().os, 'linux');
});
