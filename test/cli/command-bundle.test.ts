import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { BUNDLE_WRAPPER_HEAD, BUNDLE_WRAPPER_TAIL, loadCommandBundle } from '../../src/cli/command-bundle.js';
import { shebangNodeFlags } from '../../bench/micro/launcher.js';

const cliDir = resolve(import.meta.dirname, '../../dist/cli');

test('every command bundle has a V8 code cache that V8 accepts, under the launcher\'s node flags, for the text the loader compiles', () => {
  // main.cjs is the launcher's entry, loaded by require (small; no cache); errors.cjs is shared.
  const bundles = readdirSync(cliDir).filter((f) => f.endsWith('.cjs') && f !== 'errors.cjs' && f !== 'main.cjs');
  assert.ok(bundles.includes('build.cjs') && bundles.includes('executor.cjs'), `bundles: ${bundles.join(' ')} (run npm run build)`);
  // In a node started as bin/stowage starts it: a cache is rejected under other V8 flags.
  const check = `
    const { readFileSync } = require('node:fs');
    const { Script } = require('node:vm');
    const [head, tail, dir, ...names] = JSON.parse(process.argv[1]);
    const rejected = names.filter((n) => new Script(head + readFileSync(dir + '/' + n, 'utf8') + tail, { filename: dir + '/' + n, cachedData: readFileSync(dir + '/' + n + '.v8cache') }).cachedDataRejected);
    process.stdout.write(JSON.stringify(rejected));`;
  const flags = shebangNodeFlags(resolve(cliDir, '../../bin/stowage'));
  const out = execFileSync(process.execPath, [...flags, '-e', check, JSON.stringify([BUNDLE_WRAPPER_HEAD, BUNDLE_WRAPPER_TAIL, cliDir, ...bundles])], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), [], 'caches made from other text, under other flags or by another V8');
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
