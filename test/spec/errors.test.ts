import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSpec } from '../../src/spec/load.js';
import { workspace, posOf, at, find, summary, validator } from './helpers.js';

const ws = workspace({ Dockerfile: 'FROM scratch\n', 'sub/Dockerfile': 'FROM scratch\n' });
after(() => ws.cleanup());

test('every kind of error points at its node, all reported in one pass, with did-you-mean', async () => {
  const yaml = [
    'version: 1',
    'vars:',
    '  REGION: { default: eu }',
    'imags: {}',
    'images:',
    '  web:',
    '    contxt: sub',
    '    destinations: ["oci:out/${{ vars.REGOIN }}"]',
    '    platforms: [linux/amd64, linox/arm64]',
    '    push: "yes"',
    '    extends: [bsse]',
    '  base:',
    '    context: sub',
    '    destinations: [oci:out/web]',
    '  missing:',
    '    context: nowhere',
    'groups:',
    '  all: [web, bse]',
    'execution:',
    '  failure: fail-fst',
    '',
  ].join('\n');
  const r = await ws.load(yaml);
  assert.equal(r.spec, undefined);
  const expect = (code: string, contains: string, needle: string, hint?: string) => {
    const d = find(r.diagnostics, code, contains);
    assert.ok(d, `expected ${code} '${contains}' in:\n${summary(r.diagnostics)}`);
    const p = posOf(yaml, needle);
    assert.equal(at(d), `${p.line}:${p.column}`, `${code} '${contains}' position`);
    assert.equal(d.file, 'stowage.yaml');
    if (hint) assert.match(d.hint ?? '', new RegExp(hint));
  };
  expect('spec/unknown-key', "'imags'", 'imags', "did you mean 'images'");
  expect('spec/unknown-key', "'contxt'", 'contxt', "did you mean 'context'");
  expect('spec/interpolation', 'vars.REGOIN', '${{ vars.REGOIN }}', "did you mean 'vars.REGION'");
  expect('spec/invalid-platform', 'linox', 'linox/arm64', "did you mean 'linux'");
  expect('spec/type', 'push', '"yes"');
  expect('spec/unknown-extends', "'bsse'", 'bsse', "did you mean 'base'");
  expect('spec/context-missing', "'missing'", 'nowhere');
  expect('spec/unknown-image', "'bse'", 'bse', "did you mean 'base'");
  expect('spec/invalid-value', 'failure', 'fail-fst', "did you mean 'fail-fast'");
  // The interpolation error's range covers exactly the expression.
  const interp = find(r.diagnostics, 'spec/interpolation')!;
  assert.equal(interp.range!.end.column - interp.range!.start.column, '${{ vars.REGOIN }}'.length);
});

test('YAML syntax errors carry positions, all of them', async () => {
  const yaml = 'version: 1\nimages:\n  a: [1, 2\n  b: {x: 1\n';
  const r = await ws.load(yaml);
  assert.equal(r.spec, undefined);
  const syntax = r.diagnostics.filter((d) => d.code === 'spec/yaml-syntax');
  assert.ok(syntax.length >= 1, summary(r.diagnostics));
  for (const d of syntax) assert.ok(d.range && d.range.start.line >= 3, summary(syntax));
});

test('tabs, duplicate keys and complex keys are clean diagnostics', async () => {
  const dup = await ws.load('version: 1\nimages:\n  a: {}\n  a: {}\n');
  assert.equal(at(find(dup.diagnostics, 'spec/duplicate-key')), '4:3');
  const tab = await ws.load('version: 1\nimages:\n\ta: {}\n');
  assert.ok(tab.diagnostics.some((d) => d.code === 'spec/yaml-syntax' && d.range?.start.line === 3), summary(tab.diagnostics));
  const complex = await ws.load('version: 1\nimages:\n  ? [a, b]\n  : {}\n');
  assert.ok(find(complex.diagnostics, 'spec/complex-key'), summary(complex.diagnostics));
});

test('missing required keys, wrong version, wrong root type', async () => {
  const r = await ws.load('version: 2\n');
  assert.ok(find(r.diagnostics, 'spec/invalid-value', 'version'), summary(r.diagnostics));
  assert.ok(find(r.diagnostics, 'spec/missing-key', "'images'"), summary(r.diagnostics));
  const list = await ws.load('- a\n- b\n');
  assert.equal(at(find(list.diagnostics, 'spec/type')), '1:1');
  const empty = await ws.load('');
  assert.ok(empty.diagnostics.some((d) => d.severity === 'error'), 'an empty spec is an error');
  for (const d of empty.diagnostics) assert.ok(!d.range || (d.range.start.line >= 1 && d.range.start.column >= 1), summary(empty.diagnostics));
});

test('missing, directory, non-UTF-8 and unreadable paths are diagnostics, not throws', async () => {
  const missing = await loadSpec(join(ws.dir, 'nope.yaml'), { cwd: ws.dir, validator });
  assert.deepEqual(missing.diagnostics.map((d) => d.code), ['spec/not-found']);
  const dir = await loadSpec(ws.dir, { cwd: ws.dir, validator });
  assert.deepEqual(dir.diagnostics.map((d) => d.code), ['spec/not-a-file']);
  const notDir = await loadSpec(join(ws.dir, 'Dockerfile', 'x.yaml'), { cwd: ws.dir, validator });
  assert.deepEqual(notDir.diagnostics.map((d) => d.code), ['spec/not-found']);
  writeFileSync(join(ws.dir, 'latin1.yaml'), Buffer.from([0x76, 0x3a, 0x20, 0xe9, 0x0a]));
  const enc = await loadSpec(join(ws.dir, 'latin1.yaml'), { cwd: ws.dir, validator });
  assert.deepEqual(enc.diagnostics.map((d) => d.code), ['spec/encoding']);
  const unreadable = await loadSpec(join(ws.dir, 'x.yaml'), {
    cwd: ws.dir,
    validator,
    stat: async () => ({ isFile: () => true, isDirectory: () => false, size: 10 }),
    readFile: async () => { throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' }); },
  });
  assert.deepEqual(unreadable.diagnostics.map((d) => d.code), ['spec/unreadable']);
  assert.match(unreadable.diagnostics[0]!.message, /permission denied/);
});

test('a 10 MB spec fails cleanly and quickly; a spec under the limit loads', async () => {
  const big = `version: 1\nimages:\n${'  # padding padding padding padding padding padding padding padding\n'.repeat(150_000)}  a: {}\n`;
  assert.ok(big.length > 10e6);
  const r = await ws.load(big);
  assert.deepEqual(r.diagnostics.map((d) => d.code), ['spec/too-large']);
  const ok = await ws.load(`version: 1\nimages:\n${`  # ${'x'.repeat(200)}\n`.repeat(1000)}  a: {}\n`);
  assert.ok(ok.spec, summary(ok.diagnostics));
});

test('deep nesting and alias bombs end in a diagnostic, not a stack overflow or hang', async () => {
  const deepFlow = `version: 1\nimages:\n  a:\n    args: ${'['.repeat(2000)}${']'.repeat(2000)}\n`;
  const r1 = await ws.load(deepFlow);
  assert.equal(r1.spec, undefined);
  assert.ok(r1.diagnostics.some((d) => d.code === 'spec/too-deep' || d.code === 'spec/yaml-syntax'), summary(r1.diagnostics));
  const deepBlock = `version: 1\nimages:\n  a:\n    args:\n${Array.from({ length: 200 }, (_, i) => `${' '.repeat(6 + i * 2)}k${i}:`).join('\n')} 1\n`;
  const r2 = await ws.load(deepBlock);
  assert.ok(find(r2.diagnostics, 'spec/too-deep'), summary(r2.diagnostics));
  let bomb = 'version: 1\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n';
  for (let i = 1; i < 9; i++) bomb += `x${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]\n`;
  bomb += 'images: {}\n';
  const r3 = await ws.load(bomb);
  assert.ok(find(r3.diagnostics, 'spec/too-complex'), summary(r3.diagnostics));
});

test('a key named __proto__ stays data', async () => {
  const r = await ws.load('version: 1\nimages:\n  a:\n    args:\n      __proto__: x\n');
  assert.ok(r.spec, summary(r.diagnostics));
  assert.equal(Object.getPrototypeOf(r.spec.images[0]!.args), Object.prototype);
  assert.equal(r.spec.images[0]!.args['__proto__'], 'x');
});

test('a Dockerfile path that is a directory or missing points at the dockerfile node', async () => {
  mkdirSync(join(ws.dir, 'dirfile'), { recursive: true });
  const yaml = 'version: 1\nimages:\n  a:\n    dockerfile: dirfile\n  b:\n    dockerfile: sub/Nope\n';
  const r = await ws.load(yaml);
  assert.equal(at(find(r.diagnostics, 'spec/dockerfile-missing', "'a'")), `${posOf(yaml, 'dirfile').line}:${posOf(yaml, 'dirfile').column}`);
  assert.equal(at(find(r.diagnostics, 'spec/dockerfile-missing', "'b'")), `${posOf(yaml, 'sub/Nope').line}:${posOf(yaml, 'sub/Nope').column}`);
});
