// Precompiles the spec's JSON Schema into a standalone validator module (dist/spec/), so the CLI
// does not load ajv's compiler and compile the schema on every run (~0.5 s saved per command).
// Run by `npm run build` after tsc; src/spec/schema.ts falls back to compiling when it is absent
// or was made from a different schema.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const Ajv2020 = require('ajv/dist/2020.js');
const standalone = require('ajv/dist/standalone').default;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schemaText = readFileSync(join(root, 'schema', 'stowage.schema.json'), 'utf8');
const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true, code: { source: true } });
const validate = ajv.compile(JSON.parse(schemaText));
const hash = createHash('sha256').update(schemaText).digest('hex');
const code = `${standalone(ajv, validate)}\nmodule.exports.schemaSha256 = ${JSON.stringify(hash)};\n`;
// Into <dist>/spec/ for a compiled tree elsewhere (bench's private build), else the checkout's dist/.
const out = join(process.argv[2] ?? join(root, 'dist'), 'spec', 'spec-validator.generated.cjs');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(`${out}.tmp`, code);
renameSync(`${out}.tmp`, out);
