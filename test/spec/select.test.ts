import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { selectImages } from '../../src/spec/select.js';
import { workspace, summary } from './helpers.js';

const ws = workspace();
after(() => ws.cleanup());

test('selectImages: names, groups, matrix families, globs, unknown with did-you-mean', async () => {
  const r = await ws.load('version: 1\nimages:\n  api: {}\n  svc-a: {}\n  svc-b: {}\n  tool: { matrix: { v: [x, y] } }\ngroups:\n  backend: [api, "svc-*"]\n');
  assert.ok(r.spec, summary(r.diagnostics));
  const spec = r.spec;
  assert.deepEqual(selectImages(spec, []).images, ['api', 'svc-a', 'svc-b', 'tool-x', 'tool-y']);
  assert.deepEqual(selectImages(spec, ['backend']), { images: ['api', 'svc-a', 'svc-b'], diagnostics: [] });
  assert.deepEqual(selectImages(spec, ['svc-?', 'tool']).images, ['svc-a', 'svc-b', 'tool-x', 'tool-y']);
  assert.deepEqual(selectImages(spec, ['tool-y', 'api', 'api']).images, ['api', 'tool-y']);
  const bad = selectImages(spec, ['backnd', 'zzz-*']);
  assert.deepEqual(bad.diagnostics.map((d) => d.code), ['select/unknown', 'select/no-match']);
  assert.match(bad.diagnostics[0]!.hint ?? '', /did you mean 'backend'/);
});
