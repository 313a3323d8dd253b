/**
 * Unchanged images are reused, not rebuilt: a warm `stowage build` looks each image up by its key
 * (final step key + labels) and runs no stage at all — and anything that changes the image makes
 * it build again: the base tag moving to another image, a label, a lost blob, what COPY . carries
 * from the context, the epoch of an image that is its base alone. (--no-cache: test/cache/build-cli.test.ts.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const STOWAGE = join(process.cwd(), 'bin', 'stowage');
let registry: TestRegistry;
let work: string;

before(async () => {
  registry = await startRegistry();
  work = mkdtempSync(join(tmpdir(), 'stowage-reuse-'));
});
after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

interface Meta {
  images: Record<string, { status: string; digest: string; reused?: boolean; cacheHits?: number }>;
}

interface Run {
  meta: Meta;
  /** Images that started a stage (i.e. were built, not reused). */
  builtImages: Set<string>;
}

function build(dir: string, extra: string[] = [], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(STOWAGE, ['build', '--metadata-file', 'meta.json', '--progress', 'json', ...extra], {
      cwd: dir,
      env: { ...process.env, STOWAGE_CACHE_DIR: join(work, 'cache'), NO_COLOR: '1', ...env },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`stowage build exited ${code}: ${stderr}`));
      const events = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; image?: string });
      resolve({
        meta: JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as Meta,
        builtImages: new Set(events.filter((e) => e.type === 'stage-start').map((e) => e.image!)),
      });
    });
  });
}

/** An external base (its own spec, pushed to the registry) and two images FROM it, one of them labelled. */
function projects(): { baseDir: string; appDir: string } {
  const baseDir = join(work, 'base');
  const appDir = join(work, 'app');
  mkdirSync(baseDir, { recursive: true });
  writeFileSync(join(baseDir, 'Dockerfile'), 'FROM scratch\nCOPY version.txt /etc/base-version\n');
  writeFileSync(join(baseDir, 'version.txt'), 'base 1\n');
  writeFileSync(join(baseDir, 'stowage.yaml'), `version: 1\nimages:\n  base:\n    context: .\n    destinations: ["${registry.host}/ext/base:1"]\n`);
  mkdirSync(join(appDir, 'ctx'), { recursive: true });
  writeFileSync(join(appDir, 'ctx', 'Dockerfile'), `FROM ${registry.host}/ext/base:1\nCOPY app.txt /srv/app.txt\nENV MODE=prod\n`);
  writeFileSync(join(appDir, 'ctx', 'app.txt'), 'app 1\n');
  writeFileSync(
    join(appDir, 'stowage.yaml'),
    'version: 1\nimages:\n' +
      `  plain:\n    context: ctx\n    destinations: ["${registry.host}/app/plain:1"]\n` +
      `  labelled:\n    context: ctx\n    labels: { team: a }\n    destinations: ["${registry.host}/app/labelled:1", "oci:out/labelled"]\n` +
      // Builds on an image of this spec: reused too once its dependency is known.
      `  child:\n    context: ctx\n    dockerfile: Dockerfile.child\n    destinations: ["${registry.host}/app/child:1"]\n`,
  );
  writeFileSync(join(appDir, 'ctx', 'Dockerfile.child'), 'FROM image:plain\nCOPY app.txt /srv/again.txt\n');
  return { baseDir, appDir };
}

test('a warm build reuses every unchanged image and runs no stage; a moved base tag, a label or a pruned blob rebuild exactly what they touch', async () => {
  const { baseDir, appDir } = projects();
  await build(baseDir);
  const cold = await build(appDir);
  assert.deepEqual([...cold.builtImages].sort(), ['child', 'labelled', 'plain']);

  const warm = await build(appDir);
  assert.deepEqual([...warm.builtImages], [], 'nothing is built when nothing changed');
  for (const name of ['plain', 'labelled', 'child']) {
    assert.equal(warm.meta.images[name]!.reused, true, name);
    assert.equal(warm.meta.images[name]!.digest, cold.meta.images[name]!.digest, `${name}: the same image`);
  }
  assert.equal(warm.meta.images['plain']!.cacheHits, 2, 'COPY and ENV count as restored steps');

  // The base tag moves to another image: every image on it must be built again, on the new base.
  writeFileSync(join(baseDir, 'version.txt'), 'base 2\n');
  await build(baseDir);
  const rebased = await build(appDir);
  assert.deepEqual([...rebased.builtImages].sort(), ['child', 'labelled', 'plain']);
  for (const name of ['plain', 'labelled', 'child']) {
    assert.notEqual(rebased.meta.images[name]!.digest, cold.meta.images[name]!.digest, `${name} is rebuilt on the new base`);
    assert.notEqual(rebased.meta.images[name]!.reused, true);
  }

  // A label is part of the image: only the labelled image is assembled again.
  writeFileSync(join(appDir, 'stowage.yaml'), readFileSync(join(appDir, 'stowage.yaml'), 'utf8').replace('team: a', 'team: b'));
  const relabelled = await build(appDir);
  assert.deepEqual([...relabelled.builtImages], ['labelled']);
  assert.equal(relabelled.meta.images['plain']!.digest, rebased.meta.images['plain']!.digest);

  // The store loses the manifests the records name (a clean-up): those images are built, nothing fails.
  const blobs = join(work, 'cache', 'blobs', 'sha256');
  const records = join(work, 'cache', 'built-images');
  for (const f of readdirSync(records)) {
    const rec = JSON.parse(readFileSync(join(records, f), 'utf8')) as { manifest: { digest: string } };
    rmSync(join(blobs, rec.manifest.digest.slice('sha256:'.length)), { force: true });
  }
  const pruned = await build(appDir);
  assert.deepEqual([...pruned.builtImages].sort(), ['child', 'labelled', 'plain']);
  for (const name of ['plain', 'labelled', 'child']) assert.equal(pruned.meta.images[name]!.digest, relabelled.meta.images[name]!.digest, `${name}: rebuilt from the step cache, same image`);
});

// A stage with no steps keys on its base alone (stageFinalKey), yet its `created` is the epoch:
// imageKey (src/cache/built-images.ts) covers SOURCE_DATE_EPOCH.
test('an image that is its base alone (FROM x, no steps) is not reused across a different SOURCE_DATE_EPOCH: its created time differs', async () => {
  const baseDir = join(work, 'epoch-base');
  mkdirSync(baseDir, { recursive: true });
  writeFileSync(join(baseDir, 'Dockerfile'), 'FROM scratch\nCOPY v.txt /v.txt\n');
  writeFileSync(join(baseDir, 'v.txt'), 'v\n');
  writeFileSync(join(baseDir, 'stowage.yaml'), `version: 1\nimages:\n  base:\n    context: .\n    destinations: ["${registry.host}/ext/epoch-base:1"]\n`);
  await build(baseDir);

  const appDir = join(work, 'epoch-app');
  mkdirSync(appDir, { recursive: true });
  writeFileSync(join(appDir, 'Dockerfile'), `FROM ${registry.host}/ext/epoch-base:1\n`);
  writeFileSync(join(appDir, 'stowage.yaml'), `version: 1\nimages:\n  retag:\n    context: .\n    labels: { team: a }\n    destinations: ["oci:out/retag"]\n`);
  const first = (await build(appDir, [], { SOURCE_DATE_EPOCH: '100' })).meta;
  const second = (await build(appDir, [], { SOURCE_DATE_EPOCH: '200' })).meta;
  assert.notEqual(second.images['retag']!.reused, true, 'another epoch is another image');
  assert.notEqual(second.images['retag']!.digest, first.images['retag']!.digest);
  const again = (await build(appDir, [], { SOURCE_DATE_EPOCH: '200' })).meta;
  assert.equal(again.images['retag']!.reused, true, 'the same epoch again is reused');
  assert.equal(again.images['retag']!.digest, second.images['retag']!.digest);
});

test('context changes that COPY . carries into the image are not reused: a .dockerignore edit, a mode change, an empty directory, a symlink retargeted', async () => {
  const dir = join(work, 'ctx-changes');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
  writeFileSync(join(dir, 'a.txt'), 'a\n');
  writeFileSync(join(dir, 'b.txt'), 'b\n');
  writeFileSync(join(dir, 'stowage.yaml'), 'version: 1\nimages:\n  img:\n    context: .\n    destinations: ["oci:out/img"]\n');
  writeFileSync(join(dir, '.dockerignore'), 'out\nmeta.json\nstowage.yaml\n');
  const { chmodSync, symlinkSync, unlinkSync } = await import('node:fs');
  symlinkSync('a.txt', join(dir, 'link'));
  let prev = (await build(dir)).meta;
  const changes: Array<[string, () => void]> = [
    ['.dockerignore excludes b.txt', () => writeFileSync(join(dir, '.dockerignore'), 'out\nmeta.json\nstowage.yaml\nb.txt\n')],
    ['a.txt becomes executable', () => chmodSync(join(dir, 'a.txt'), 0o755)],
    ['an empty directory appears', () => mkdirSync(join(dir, 'empty'))],
    ['the symlink points elsewhere', () => (unlinkSync(join(dir, 'link')), symlinkSync('b.txt', join(dir, 'link')))],
  ];
  for (const [what, change] of changes) {
    change();
    const next = (await build(dir)).meta;
    assert.notEqual(next.images['img']!.reused, true, `${what}: the image changed, it must be built`);
    assert.notEqual(next.images['img']!.digest, prev.images['img']!.digest, what);
    prev = next;
  }
});
