/**
 * What the image key must cover beyond the step chain: inputs that change the assembled image even
 * when the target stage runs no step of its own (`FROM base` alone, e.g. to relabel or re-tag).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const STOWAGE = join(process.cwd(), 'bin', 'stowage');
let registry: TestRegistry;
let work: string;

before(async () => {
  registry = await startRegistry();
  work = mkdtempSync(join(tmpdir(), 'stowage-reuse-inputs-'));
});
after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

interface Meta {
  images: Record<string, { digest: string; reused?: boolean }>;
}

function build(dir: string, env: Record<string, string> = {}, extra: string[] = []): Promise<Meta> {
  return new Promise((resolve, reject) => {
    const child = spawn(STOWAGE, ['build', '--metadata-file', 'meta.json', '--progress', 'plain', ...extra], {
      cwd: dir,
      env: { ...process.env, STOWAGE_CACHE_DIR: join(work, 'cache'), NO_COLOR: '1', ...env },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`stowage build exited ${code}: ${stderr}`));
      resolve(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as Meta);
    });
  });
}

// Fails until imageKey (src/cache/built-images.ts) covers SOURCE_DATE_EPOCH: a stage with no steps
// keys on its base alone (stageFinalKey), yet its `created` is the epoch. Remove `todo` with the fix.
test('an image that is its base alone (FROM x, no steps) is not reused across a different SOURCE_DATE_EPOCH: its created time differs', { todo: 'imageKey must include the epoch (H1)' }, async () => {
  const baseDir = join(work, 'base');
  mkdirSync(baseDir, { recursive: true });
  writeFileSync(join(baseDir, 'Dockerfile'), 'FROM scratch\nCOPY v.txt /v.txt\n');
  writeFileSync(join(baseDir, 'v.txt'), 'v\n');
  writeFileSync(join(baseDir, 'stowage.yaml'), `version: 1\nimages:\n  base:\n    context: .\n    destinations: ["${registry.host}/ext/base:1"]\n`);
  await build(baseDir);

  const appDir = join(work, 'app');
  mkdirSync(appDir, { recursive: true });
  writeFileSync(join(appDir, 'Dockerfile'), `FROM ${registry.host}/ext/base:1\n`);
  writeFileSync(join(appDir, 'stowage.yaml'), `version: 1\nimages:\n  retag:\n    context: .\n    labels: { team: a }\n    destinations: ["oci:out/retag"]\n`);
  const first = await build(appDir, { SOURCE_DATE_EPOCH: '100' });
  const second = await build(appDir, { SOURCE_DATE_EPOCH: '200' });
  assert.notEqual(second.images['retag']!.reused, true, 'another epoch is another image');
  assert.notEqual(second.images['retag']!.digest, first.images['retag']!.digest);
  const again = await build(appDir, { SOURCE_DATE_EPOCH: '200' });
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
  let prev = await build(dir);
  const changes: Array<[string, () => void]> = [
    ['.dockerignore excludes b.txt', () => writeFileSync(join(dir, '.dockerignore'), 'out\nmeta.json\nstowage.yaml\nb.txt\n')],
    ['a.txt becomes executable', () => chmodSync(join(dir, 'a.txt'), 0o755)],
    ['an empty directory appears', () => mkdirSync(join(dir, 'empty'))],
    ['the symlink points elsewhere', () => (unlinkSync(join(dir, 'link')), symlinkSync('b.txt', join(dir, 'link')))],
  ];
  for (const [what, change] of changes) {
    change();
    const next = await build(dir);
    assert.notEqual(next.images['img']!.reused, true, `${what}: the image changed, it must be built`);
    assert.notEqual(next.images['img']!.digest, prev.images['img']!.digest, what);
    prev = next;
  }
});
