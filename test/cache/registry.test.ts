/**
 * The registry cache against Debian's real registry: a machine with an empty cache dir gets every
 * step from `<repo>:<key hex>` entries another machine pushed; a registry that is down is one
 * warning and a normal build; an expired entry is ignored.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { startRegistry, freePort, type TestRegistry } from '../helpers/registry.js';
import { cacheFixture, cachedBuild, type CacheFixture } from './helpers.js';

let registry: TestRegistry;
let fx: CacheFixture;

before(async () => {
  registry = await startRegistry();
  fx = cacheFixture({
    Dockerfile: 'FROM busybox\nCOPY a.txt /a.txt\nRUN cp /a.txt /b.txt && echo ran\nENV DONE=1\n',
    'a.txt': 'shared\n',
  });
});

after(async () => {
  await registry?.stop();
  fx?.cleanup();
});

test('a fresh cache dir restores every step from the registry cache repo; nothing runs', async () => {
  const repo = `${registry.host}/team/cache`;
  const first = await cachedBuild(fx, { repo, cacheDir: join(fx.root, 'machine-a') });
  assert.deepEqual(first.ran, [2, 3, 4]);
  assert.deepEqual(first.warnings, []);
  // One entry per step, tagged by key.
  const tags = registry.accessLog().filter((e) => e.method === 'PUT' && /\/team\/cache\/manifests\/[0-9a-f]{64}$/.test(e.path) && e.status === 201);
  assert.equal(tags.length, 3);

  const second = await cachedBuild(fx, { repo, cacheDir: join(fx.root, 'machine-b') });
  assert.deepEqual(second.ran, [], 'every step came from the registry');
  assert.deepEqual(second.hits, [2, 3, 4]);
  assert.ok(second.events.every((e) => e.type !== 'cache-hit' || e.source === 'remote'));
  assert.equal(second.image.digest, first.image.digest, 'the same image as the machine that built it');
  assert.deepEqual(second.warnings, []);

  // Machine b now has the entries locally: no registry round trip for them.
  const before = registry.accessLog().length;
  const third = await cachedBuild(fx, { repo, cacheDir: join(fx.root, 'machine-b') });
  assert.deepEqual(third.ran, []);
  assert.ok(third.events.every((e) => e.type !== 'cache-hit' || e.source === 'local'));
  assert.equal(registry.accessLog().length, before, 'local hits ask the registry nothing');

  // A TTL shorter than the entries' age: the remote entries are ignored and the steps run.
  await new Promise((r) => setTimeout(r, 20));
  const expired = await cachedBuild(fx, { repo, cacheDir: join(fx.root, 'machine-c'), ttlMs: 1 });
  assert.deepEqual(expired.ran, [2, 3, 4]);
});

test('a registry cache that is down is one warning; the build succeeds and runs its steps', async () => {
  const port = await freePort(); // nothing listens here
  const r = await cachedBuild(fx, { repo: `127.0.0.1:${port}/cache`, cacheDir: join(fx.root, 'machine-d') });
  assert.deepEqual(r.ran, [2, 3, 4]);
  assert.equal(r.warnings.filter((w) => /registry cache .* not usable/.test(w)).length, 1, r.warnings.join('\n'));
  assert.ok(r.warnings.length <= 2, r.warnings.join('\n'));
  assert.ok(r.image.digest.startsWith('sha256:'));
});

test('stowage executor --cache=true --cache-repo: a second machine restores the steps from the registry', async () => {
  const ctx = join(fx.root, 'exec-context');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY f.txt /f.txt\nLABEL k=v\n');
  writeFileSync(join(ctx, 'f.txt'), 'executor\n');
  const exec = (cacheDir: string) =>
    runStowage(['executor', '-c', ctx, '-d', `oci:${join(fx.root, 'exec-out')}:t`, '--cache=true', '--cache-repo', `${registry.host}/exec/cache`, '--cache-dir', join(fx.root, cacheDir)]);
  const a = await exec('exec-a');
  assert.equal(a.code, 0, a.stderr);
  assert.doesNotMatch(a.stderr, /CACHED/);
  const b = await exec('exec-b');
  assert.equal(b.code, 0, b.stderr);
  assert.equal((b.stderr.match(/CACHED \(remote\)/g) ?? []).length, 2, b.stderr);
  assert.equal(b.stdout, a.stdout, 'same digest printed');
});

function runStowage(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(process.cwd(), 'bin', 'stowage'), args, { env: { ...process.env, CI: 'true' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
