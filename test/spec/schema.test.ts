import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020Module from 'ajv/dist/2020.js';
import { readSchemaText, schemaPath } from '../../src/spec/schema.js';

const Ajv2020 = Ajv2020Module as unknown as typeof Ajv2020Module.default;

test('the schema is valid JSON Schema 2020-12 and compiles in strict mode', () => {
  const schema = JSON.parse(readSchemaText()) as Record<string, unknown>;
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true });
  assert.equal(ajv.validateSchema(schema), true, JSON.stringify(ajv.errors));
  ajv.compile(schema);
  assert.match(schemaPath(), /schema[/\\]stowage\.schema\.json$/);
});

test('every property in the schema has a description', () => {
  const schema = JSON.parse(readSchemaText()) as unknown;
  const missing: string[] = [];
  let checked = 0;
  const walk = (node: unknown, path: string) => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${path}/${i}`));
    const obj = node as Record<string, unknown>;
    for (const key of ['properties', '$defs']) {
      const props = obj[key];
      if (props && typeof props === 'object') {
        for (const [name, sub] of Object.entries(props as Record<string, unknown>)) {
          checked++;
          const s = sub as Record<string, unknown>;
          const described = typeof s.description === 'string' && s.description.length > 10;
          if (!described) missing.push(`${path}/${key}/${name}`);
        }
      }
    }
    // Map values (additionalProperties / items schemas) describe what each entry is, too.
    for (const key of ['additionalProperties', 'items']) {
      const sub = obj[key];
      if (sub && typeof sub === 'object' && !('$ref' in sub) && typeof (sub as { description?: unknown }).description !== 'string') missing.push(`${path}/${key}`);
    }
    for (const [k, v] of Object.entries(obj)) walk(v, `${path}/${k}`);
  };
  walk(schema, '#');
  assert.ok(checked > 40, `walked ${checked} properties`);
  assert.deepEqual(missing, []);
});

test('the schema accepts the documented shape and rejects unknown keys', () => {
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  const validate = ajv.compile(JSON.parse(readSchemaText()) as object);
  const good = {
    version: 1,
    vars: { TAG: 'x', N: { type: 'number', default: 2, description: 'n' } },
    defaults: { labels: { a: 'b' } },
    templates: { t: { context: 'x', extends: ['u'] } },
    images: { a: { extends: 't', matrix: { v: ['x', 'y'], exclude: [{ v: 'x' }], name: 'a-${{ matrix.v }}' }, secrets: { s: { env: 'S' }, f: { file: 'f' } }, push: false, noCache: true, platforms: ['linux/arm/v7'] } },
    groups: { g: ['a', 'a-*'] },
    execution: { jobs: 4, failure: 'keep-going', publish: 'after-all' },
    cache: { repo: 'localhost:5000/cache', ttl: '7d' },
  };
  assert.equal(validate(good), true, JSON.stringify(validate.errors));
  assert.equal(validate({ ...good, extra: 1 }), false);
  assert.equal(validate({ ...good, images: { a: { secrets: { s: { env: 'S', file: 'f' } } } } }), false, 'a secret has exactly one source');
  assert.equal(validate({ ...good, defaults: { matrix: { v: [1] } } }), false, 'matrix is not allowed in defaults');
});
