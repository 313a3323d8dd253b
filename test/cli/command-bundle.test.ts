import { strict as assert } from 'node:assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { Script } from 'node:vm';
import { BUNDLE_WRAPPER_HEAD, BUNDLE_WRAPPER_TAIL, loadCommandBundle } from '../../src/cli/command-bundle.js';

const cliDir = resolve(import.meta.dirname, '../../dist/cli');

test('every command bundle has a V8 code cache that V8 accepts for the text the loader compiles', () => {
  const bundles = readdirSync(cliDir).filter((f) => f.endsWith('.cjs') && f !== 'errors.cjs');
  assert.ok(bundles.includes('build.cjs') && bundles.includes('executor.cjs'), `bundles: ${bundles.join(' ')} (run npm run build)`);
  for (const b of bundles) {
    const file = join(cliDir, b);
    const script = new Script(BUNDLE_WRAPPER_HEAD + readFileSync(file, 'utf8') + BUNDLE_WRAPPER_TAIL, { filename: file, cachedData: readFileSync(`${file}.v8cache`) });
    assert.equal(script.cachedDataRejected, false, `${b}: the cache was made from other text or by another V8`);
  }
});

test('a bundle whose cache is missing or unusable is compiled from source', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stowage-bundle-'));
  try {
    writeFileSync(join(dir, 'demo.cjs'), "exports.answer = () => 42;\nexports.where = __filename;\nexports.req = typeof require('node:path').join;\n");
    const plain = loadCommandBundle('demo', dir);
    assert.equal((plain.answer as () => number)(), 42);
    assert.equal(plain.where, join(dir, 'demo.cjs'));
    assert.equal(plain.req, 'function');
    writeFileSync(join(dir, 'demo.cjs.v8cache'), 'not a code cache');
    assert.equal((loadCommandBundle('demo', dir).answer as () => number)(), 42);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
