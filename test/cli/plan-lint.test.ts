import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const STOWAGE = join(process.cwd(), 'bin', 'stowage');
const FIXTURE = 'test/fixtures/plan/monorepo';

function stowage(args: string[], cwd = process.cwd()) {
  // A step cache that is always empty, so plan's per-step cache status (a miss everywhere) is stable.
  const r = spawnSync(STOWAGE, args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', STOWAGE_CACHE_DIR: join(tmpdir(), 'stowage-plan-test-no-cache') } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A throwaway project: files maps relative path → content. */
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'stowage-lint-'));
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  return dir;
}

test('plan --format json matches the golden file and is byte-identical across runs', () => {
  // Without the per-step cache status: its keys hash context file modes, which follow the checkout's umask.
  const a = stowage(['plan', '-f', `${FIXTURE}/stowage.yaml`, '--format', 'json', '--platform', 'linux/amd64', '--no-cache-status']);
  assert.equal(a.code, 0, a.stderr);
  const b = stowage(['plan', '-f', `${FIXTURE}/stowage.yaml`, '--format', 'json', '--platform', 'linux/amd64', '--no-cache-status']);
  assert.equal(a.stdout, b.stdout);
  const golden = `${FIXTURE}/plan.golden.json`;
  if (process.env.UPDATE_GOLDEN) writeFileSync(golden, a.stdout);
  assert.equal(a.stdout, readFileSync(golden, 'utf8'), 'plan output changed; rerun with UPDATE_GOLDEN=1 if intended');
});

test('plan shares identical stages across images and wires image-to-image dependencies', () => {
  const r = stowage(['plan', '-f', `${FIXTURE}/stowage.yaml`, '--format', 'json', '--platform', 'linux/amd64']);
  const graph = JSON.parse(r.stdout) as {
    images: { name: string; dependsOn: string[]; stages: string[] }[];
    vertices: { id: string; usedBy: string[]; context: string; stage: { name?: string } }[];
  };
  const img = (n: string) => graph.images.find((i) => i.name === n)!;
  // api and web differ only in NAME, which the builder stage does not see: one shared vertex.
  assert.equal(img('api').stages[0], img('web').stages[0]);
  assert.notEqual(img('api').stages[1], img('web').stages[1]);
  // tool uses the same Dockerfile and stage but another context: not shared.
  assert.notEqual(img('tool').stages[0], img('api').stages[0]);
  // Registry destination and explicit image: references both make a dependency.
  assert.deepEqual(img('api').dependsOn, ['base']);
  assert.deepEqual(img('tool').dependsOn, ['base']);
  const shared = graph.vertices.find((v) => v.id === img('api').stages[0])!;
  assert.deepEqual(shared.usedBy, ['api', 'web']);
});

test('plan selection by group limits the graph to the images and what they depend on', () => {
  const r = stowage(['plan', '-f', `${FIXTURE}/stowage.yaml`, '--format', 'json', 'services']);
  assert.equal(r.code, 0, r.stderr);
  const names = (JSON.parse(r.stdout) as { images: { name: string }[] }).images.map((i) => i.name);
  assert.deepEqual(names, ['api', 'base', 'web']);
  const bad = stowage(['plan', '-f', `${FIXTURE}/stowage.yaml`, 'sevrices']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /services/);
});

test('plan --format dot is a digraph with an edge per dependency', () => {
  const r = stowage(['plan', '-f', `${FIXTURE}/stowage.yaml`, '--format', 'dot']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^digraph stowage \{/);
  assert.match(r.stdout, /"img:web"/);
  assert.match(r.stdout, /-> "v:/);
});

test('lint points at the spec for an unknown target and an undeclared arg, and fails', () => {
  const dir = project({
    'stowage.yaml':
      'version: 1\nimages:\n  app:\n    context: .\n    target: biulder\n    destinations: [oci:out/app]\n  other:\n    context: .\n    args:\n      NOPE: x\n    destinations: [oci:out/other]\n',
    Dockerfile: 'FROM scratch AS builder\nCOPY a /a\n',
    a: 'a',
  });
  try {
    const r = stowage(['lint', '--format', 'json'], dir);
    assert.equal(r.code, 1, r.stderr);
    const diags = (JSON.parse(r.stdout) as { diagnostics: { file: string; line: number; column: number; code: string; severity: string; hint: string | null; message: string }[] }).diagnostics;
    const target = diags.find((d) => d.code === 'dockerfile/unknown-target');
    assert.ok(target, JSON.stringify(diags));
    assert.equal(target.file, 'stowage.yaml');
    assert.equal(target.line, 5);
    assert.match(target.hint ?? '', /builder/);
    const unused = diags.find((d) => d.code === 'spec/unused-arg');
    assert.ok(unused, JSON.stringify(diags));
    assert.equal(unused.line, 10);
    assert.match(unused.message, /NOPE/);
    assert.equal(unused.severity, 'warning');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lint reports a cycle between images, a typo in COPY --from, and --strict fails on warnings', () => {
  const dir = project({
    'stowage.yaml':
      'version: 1\nimages:\n  a:\n    context: a\n    destinations: [localhost:5000/a:1]\n  b:\n    context: b\n    destinations: [localhost:5000/b:1]\n  c:\n    context: c\n    destinations: [oci:out/c]\n',
    'a/Dockerfile': 'FROM localhost:5000/b:1\n',
    'b/Dockerfile': 'FROM image:a\n',
    'c/Dockerfile': 'FROM scratch AS build\nCOPY x /x\nFROM scratch\nCOPY --from=biuld /x /x\n',
    'c/x': 'x',
  });
  try {
    const r = stowage(['lint'], dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /graph\/image-cycle/);
    assert.match(r.stderr, /a -> b -> a|b -> a -> b/);
    assert.match(r.stderr, /did you mean --from=build/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    const gh = stowage(['lint', '--format', 'github'], dir);
    assert.match(gh.stdout, /^::error file=stowage.yaml,line=\d+,col=\d+/m);
    assert.match(gh.stdout, /^::warning file=c\/Dockerfile,line=4/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lint exit codes: 0 clean, 1 with --strict on warnings, 2 on usage errors; sarif is 2.1.0', () => {
  const dir = project({
    'stowage.yaml': 'version: 1\nimages:\n  app:\n    context: .\n    destinations: [oci:out/app]\n',
    Dockerfile: 'FROM scratch\nCOPY a /a\nCMD echo hi\n',
    a: 'a',
  });
  try {
    const plain = stowage(['lint'], dir);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stderr, /JSONArgsRecommended/);
    assert.equal(stowage(['lint', '--strict'], dir).code, 1);
    assert.equal(stowage(['lint', '--format', 'yaml'], dir).code, 2);
    assert.equal(stowage(['lint', '--frmat', 'json'], dir).code, 2);
    const sarif = JSON.parse(stowage(['lint', '--format', 'sarif'], dir).stdout) as { version: string; runs: { results: { ruleId: string }[] }[] };
    assert.equal(sarif.version, '2.1.0');
    assert.ok(sarif.runs[0]!.results.some((x) => x.ruleId === 'JSONArgsRecommended'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stowage schema prints the JSON Schema', () => {
  const r = stowage(['schema']);
  assert.equal(r.code, 0);
  const schema = JSON.parse(r.stdout) as { $schema: string };
  assert.match(schema.$schema, /2020-12/);
});
