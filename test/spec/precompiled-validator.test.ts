import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { createSpecValidator } from '../../src/spec/schema.js';

// `npm test` builds dist/ first; the CLI runs with the precompiled validator, these tests from src/
// with the one ajv compiles. They must agree on every document.
const generated = new URL('../../dist/spec/spec-validator.generated.cjs', import.meta.url);

test('the build-time precompiled validator reports exactly what the ajv-compiled one does', () => {
  assert.ok(existsSync(generated), 'run `npm run build` first: dist/spec/spec-validator.generated.cjs is missing');
  const precompiled = createRequire(import.meta.url)(generated.pathname) as ((d: unknown) => boolean) & { errors?: unknown[] };
  const compiled = createSpecValidator();
  const documents: unknown[] = [
    { version: 1, images: { a: { context: '.', destinations: ['oci:out/a'] } } },
    { version: 2, images: { a: { contxt: '.', push: 'yes', platforms: ['linux'] } } },
    { version: 1, images: {}, execution: { jobs: 0, failure: 'sometimes' }, cache: { ttl: '7 days' } },
    { version: 1, images: { m: { matrix: { v: [], name: '' }, secrets: { s: { env: 'A', file: 'b' } } } }, groups: { g: [1] } },
    'not an object',
  ];
  for (const doc of documents) {
    const a = precompiled(doc);
    const b = compiled(doc);
    assert.equal(a, b, JSON.stringify(doc));
    const strip = (errs: unknown[] | null | undefined) => (errs ?? []).map((e) => {
      const { instancePath, keyword, params, message } = e as Record<string, unknown>;
      return { instancePath, keyword, params, message };
    });
    assert.deepEqual(strip(precompiled.errors), strip(compiled.errors), JSON.stringify(doc));
  }
});
