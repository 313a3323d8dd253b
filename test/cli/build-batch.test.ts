/**
 * `stowage build` of many images against the real registry: every blob crosses the wire once,
 * other repositories get it by mount, dependents use the image built in this run, and the
 * failure/publish policies decide what is written.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const STOWAGE = join(process.cwd(), 'bin', 'stowage');
let registry: TestRegistry;
let work: string;

before(async () => {
  registry = await startRegistry();
  work = mkdtempSync(join(tmpdir(), 'stowage-batch-'));
});
after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

/**
 * Asynchronous on purpose: a synchronous spawn would stall this process's event loop, so the
 * registry's access log (read from its stdout pipe) would lag behind — or the registry would block.
 */
function run(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(STOWAGE, args, { cwd, env: { ...process.env, STOWAGE_CACHE_DIR: join(work, 'cache'), CI: 'true' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => setTimeout(() => resolve({ code, stdout, stderr }), 100));
  });
}

/** A 10-image, 5-repository spec: a shared 1 MiB base image and ten images FROM it. */
function batchProject(dir: string, host: string): void {
  mkdirSync(join(dir, 'base'), { recursive: true });
  writeFileSync(join(dir, 'base', 'Dockerfile'), 'FROM scratch\nCOPY blob.bin /base/blob.bin\n');
  writeFileSync(join(dir, 'base', 'blob.bin'), randomBytes(1024 * 1024));
  mkdirSync(join(dir, 'svc'), { recursive: true });
  writeFileSync(join(dir, 'svc', 'Dockerfile'), `ARG BASE=image:base\nFROM \${BASE}\nARG N\nCOPY n\${N}.txt /srv/\n`);
  const images = [`  base:\n    context: base\n    destinations: [${host}/shared/base:1]`];
  for (let i = 0; i < 10; i++) {
    writeFileSync(join(dir, 'svc', `n${i}.txt`), `service ${i}\n`);
    images.push(`  svc${i}:\n    context: svc\n    args: { N: "${i}" }\n    destinations: [${host}/team${i % 5}/svc${i}:1]`);
  }
  writeFileSync(join(dir, 'stowage.yaml'), `version: 1\nimages:\n${images.join('\n')}\n`);
}

test('10 images over 5 repositories: no blob uploaded twice, shared layers mounted, dependents built from this run', async () => {
  const dir = join(work, 'batch');
  batchProject(dir, registry.host);
  const r = await run(['build', '--metadata-file', 'meta.json', '--jobs', '4'], dir);
  assert.equal(r.code, 0, r.stderr);

  const log = registry.accessLog();
  // Blob commits are PUTs to an upload session carrying ?digest=.
  const commits = log.filter((e) => e.method === 'PUT' && e.path.includes('/blobs/uploads/') && e.status === 201);
  const perDigest = new Map<string, number>();
  for (const c of commits) {
    const d = /digest=([^&]+)/.exec(c.path)?.[1];
    assert.ok(d, c.path);
    perDigest.set(decodeURIComponent(d), (perDigest.get(decodeURIComponent(d)) ?? 0) + 1);
  }
  // 1 base layer + 1 base config + per service 1 layer + 1 config (identical configs collapse).
  assert.ok(perDigest.size >= 12, `expected at least 12 distinct blob uploads, saw ${perDigest.size}`);
  for (const [d, n] of perDigest) assert.equal(n, 1, `${d} uploaded ${n} times`);
  const mounts = log.filter((e) => e.method === 'POST' && e.path.includes('mount=') && e.status === 201);
  assert.ok(mounts.length >= 10, `expected the shared base layer to be mounted into the other repositories, saw ${mounts.length} mounts`);
  // Dependents used the base built in this run: nothing was pulled.
  assert.equal(log.filter((e) => e.method === 'GET' && e.path.includes('/manifests/')).length, 0);

  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as {
    status: string;
    images: Record<string, { status: string; digest: string }>;
    push: Record<string, { blobsUploaded: number; blobsMounted: number; bytesUploaded: number; requests: number }>;
  };
  assert.equal(meta.status, 'succeeded');
  assert.equal(Object.values(meta.images).filter((i) => i.status === 'succeeded').length, 11);
  const stats = meta.push[registry.host]!;
  assert.equal(stats.blobsUploaded, perDigest.size);
  // The 1 MiB base layer was sent exactly once: bytes uploaded stay well under two copies of it.
  assert.ok(stats.bytesUploaded > 1024 * 1024 && stats.bytesUploaded < 2 * 1024 * 1024, `bytesUploaded ${stats.bytesUploaded}`);

  const inspect = spawnSync('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/team3/svc8:1`], { encoding: 'utf8' });
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.equal((JSON.parse(inspect.stdout) as { Digest: string }).Digest, meta.images['svc8']!.digest);
});

function failingProject(dir: string, publish: string, failure: string): void {
  mkdirSync(join(dir, 'ok'), { recursive: true });
  mkdirSync(join(dir, 'bad'), { recursive: true });
  writeFileSync(join(dir, 'ok', 'Dockerfile'), 'FROM scratch\nCOPY f /f\n');
  writeFileSync(join(dir, 'ok', 'f'), 'ok');
  writeFileSync(join(dir, 'bad', 'Dockerfile'), 'FROM scratch\nCOPY missing.txt /m\n');
  writeFileSync(
    join(dir, 'stowage.yaml'),
    `version: 1\nexecution: { failure: ${failure}, publish: ${publish} }\nimages:\n` +
      `  ok:\n    context: ok\n    destinations: [oci:out/ok]\n` +
      `  bad:\n    context: bad\n    destinations: [oci:out/bad]\n` +
      `  after-bad:\n    context: ok\n    dockerfile: Dockerfile.dep\n    destinations: [oci:out/after-bad]\n`,
  );
  writeFileSync(join(dir, 'ok', 'Dockerfile.dep'), 'FROM image:bad\nCOPY f /g\n');
}

test('keep-going builds what does not depend on a failure; after-all publishes nothing; metadata says why', async () => {
  const dir = join(work, 'after-all');
  failingProject(dir, 'after-all', 'keep-going');
  const r = await run(['build', '--metadata-file', 'meta.json'], dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bad\/Dockerfile:2/);
  assert.match(r.stderr, /missing\.txt/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { status: string; images: Record<string, { status: string; published: boolean }> };
  assert.equal(meta.status, 'failed');
  assert.equal(meta.images['ok']!.status, 'succeeded');
  assert.equal(meta.images['bad']!.status, 'failed');
  assert.equal(meta.images['after-bad']!.status, 'skipped');
  assert.equal(existsSync(join(dir, 'out', 'ok')), false, 'after-all must not publish when an image failed');
});

test('immediate publishing writes the images that succeeded', async () => {
  const dir = join(work, 'immediate');
  failingProject(dir, 'immediate', 'keep-going');
  const r = await run(['build', '--progress', 'json'], dir);
  assert.equal(r.code, 1);
  assert.equal(existsSync(join(dir, 'out', 'ok', 'index.json')), true);
  assert.equal(existsSync(join(dir, 'out', 'bad')), false);
  const events = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; image?: string; status?: string });
  assert.ok(events.some((e) => e.type === 'image-done' && e.image === 'ok' && e.status === 'succeeded'));
  assert.ok(events.some((e) => e.type === 'summary'));
});

test('spec errors exit 2 and build nothing', async () => {
  const dir = join(work, 'spec-error');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'stowage.yaml'), 'version: 1\nimages:\n  a:\n    contxt: .\n');
  const r = await run(['build'], dir);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /stowage\.yaml:4:5/);
  assert.match(r.stderr, /context/);
});
