/**
 * A warm rebuild of an unchanged spec against the real registry: one HEAD per tag decides that
 * nothing is to be written — no blob request, no upload, no manifest PUT — and a tag that someone
 * moved to another image meanwhile is pointed back at ours, without re-sending its layers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type AccessLogEntry, type TestRegistry } from '../helpers/registry.js';

const STOWAGE = join(process.cwd(), 'bin', 'stowage');
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
let registry: TestRegistry;
let work: string;

before(async () => {
  registry = await startRegistry();
  work = mkdtempSync(join(tmpdir(), 'stowage-warm-'));
});
after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

interface Meta {
  status: string;
  images: Record<string, { status: string; digest: string; cacheHits?: number }>;
  push: Record<string, { blobsUploaded: number; blobsMounted: number; manifestsPut: number; tagsUnchanged: number; requests: number }>;
}

/** Asynchronous, so this process keeps reading the registry's access log while stowage runs. */
function build(dir: string): Promise<{ code: number | null; stderr: string; meta: Meta }> {
  return new Promise((resolve, reject) => {
    const child = spawn(STOWAGE, ['build', '--metadata-file', 'meta.json', '--progress', 'plain'], {
      cwd: dir,
      env: { ...process.env, STOWAGE_CACHE_DIR: join(work, 'cache'), CI: 'true', NO_COLOR: '1' },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve({ code, stderr, meta: JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as Meta });
      } catch (e) {
        reject(new Error(`no metadata (exit ${code}): ${stderr}`, { cause: e }));
      }
    });
  });
}

/** Four images over two repositories: a shared layer, then one of their own. */
function project(dir: string, host: string): Map<string, { repo: string; tag: string }> {
  const dests = new Map<string, { repo: string; tag: string }>();
  writeFileSync(join(dir, 'shared.bin'), randomBytes(8192));
  const images: string[] = [];
  for (let i = 0; i < 4; i++) {
    const name = `app${i}`;
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(join(dir, name, 'own.txt'), `image ${i} ${randomBytes(8).toString('hex')}\n`);
    // The context is the project root, so the shared file is one layer that every image carries.
    writeFileSync(join(dir, name, 'Dockerfile'), `FROM scratch\nCOPY shared.bin /shared.bin\nCOPY ${name}/own.txt /own.txt\n`);
    dests.set(name, { repo: `warm/r${i % 2}`, tag: `v-${name}` });
    images.push(`  ${name}:\n    context: .\n    dockerfile: ${name}/Dockerfile\n    destinations: ["${host}/warm/r${i % 2}:v-${name}"]`);
  }
  writeFileSync(join(dir, 'stowage.yaml'), `version: 1\nimages:\n${images.join('\n')}\n`);
  return dests;
}

async function tagDigest(repo: string, tag: string): Promise<string | undefined> {
  const res = await fetch(`http://${registry.host}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } });
  return res.status === 200 ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
}

/** The access log's length once the registry has written every line (it logs a moment after answering). */
async function settledLogLength(): Promise<number> {
  let n = registry.accessLog().length;
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    const now = registry.accessLog().length;
    if (now === n) return n;
    n = now;
  }
}

const isWrite = (e: AccessLogEntry) => e.method !== 'HEAD' && e.method !== 'GET';

test('warm rebuild: one HEAD per tag and nothing written; a tag moved elsewhere is pointed back without re-sending layers', async () => {
  const dir = join(work, 'p');
  mkdirSync(dir, { recursive: true });
  const dests = project(dir, registry.host);

  const cold = await build(dir);
  assert.equal(cold.code, 0, cold.stderr);
  assert.equal(cold.meta.push[registry.host]!.manifestsPut, 4);
  for (const [name, d] of dests) assert.equal(await tagDigest(d.repo, d.tag), cold.meta.images[name]!.digest);

  // Unchanged: every step from the cache, the same digests, and per tag exactly one HEAD.
  let mark = await settledLogLength();
  const warm = await build(dir);
  assert.equal(warm.code, 0, warm.stderr);
  const warmLog = registry.accessLog().slice(mark, await settledLogLength());
  for (const [name, img] of Object.entries(warm.meta.images)) {
    assert.equal(img.digest, cold.meta.images[name]!.digest, `${name} rebuilt to the same digest`);
    assert.equal(img.cacheHits, 2, `${name}: both steps restored from the cache`);
  }
  assert.deepEqual(
    warmLog.map((e) => `${e.method} ${e.path}`).sort(),
    ['GET /v2/', ...[...dests.values()].map((d) => `HEAD /v2/${d.repo}/manifests/${d.tag}`)].sort(),
    'a warm rebuild asks how the registry authenticates, then one HEAD per tag, and nothing else',
  );
  const warmStats = warm.meta.push[registry.host]!;
  assert.equal(warmStats.blobsUploaded, 0);
  assert.equal(warmStats.blobsMounted, 0);
  assert.equal(warmStats.manifestsPut, 0);
  assert.equal(warmStats.tagsUnchanged, 4);

  // Someone points app0's tag at app2's image (same repository r0): the next build must put it back.
  const app0 = dests.get('app0')!;
  const app2 = dests.get('app2')!;
  assert.equal(app0.repo, app2.repo);
  const other = await fetch(`http://${registry.host}/v2/${app2.repo}/manifests/${app2.tag}`, { headers: { accept: OCI_MANIFEST } });
  const otherBytes = Buffer.from(await other.arrayBuffer());
  const moved = await fetch(`http://${registry.host}/v2/${app0.repo}/manifests/${app0.tag}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: otherBytes });
  assert.equal(moved.status, 201);
  assert.equal(await tagDigest(app0.repo, app0.tag), cold.meta.images['app2']!.digest);

  mark = await settledLogLength();
  const again = await build(dir);
  assert.equal(again.code, 0, again.stderr);
  const againLog = registry.accessLog().slice(mark, await settledLogLength());
  assert.equal(await tagDigest(app0.repo, app0.tag), cold.meta.images['app0']!.digest, 'the moved tag points at our image again');
  for (const name of ['app1', 'app2', 'app3']) assert.equal(await tagDigest(dests.get(name)!.repo, dests.get(name)!.tag), cold.meta.images[name]!.digest);
  const writes = againLog.filter(isWrite).map((e) => `${e.method} ${e.path.replace(/\/blobs\/uploads\/[^?]*/, '/blobs/uploads/…').replace(/\?.*$/, '')}`);
  // The manifest PUT for the moved tag; at most the few-KB config is sent again, never a layer.
  assert.ok(writes.includes(`PUT /v2/${app0.repo}/manifests/${app0.tag}`), writes.join('\n'));
  assert.equal(writes.filter((w) => w.includes('/manifests/')).length, 1, writes.join('\n'));
  const manifest = JSON.parse(Buffer.from(await (await fetch(`http://${registry.host}/v2/${app0.repo}/manifests/${app0.tag}`, { headers: { accept: OCI_MANIFEST } })).arrayBuffer()).toString('utf8')) as {
    config: { digest: string };
    layers: { digest: string }[];
  };
  const committed = againLog.filter((e) => e.method === 'PUT' && e.path.includes('/blobs/uploads/') && e.status === 201).map((e) => decodeURIComponent(/digest=([^&]+)/.exec(e.path)?.[1] ?? ''));
  for (const d of committed) assert.equal(d, manifest.config.digest, `only the config may be sent again, not ${d}`);
  for (const l of manifest.layers) assert.ok(!committed.includes(l.digest));
  assert.equal(again.meta.push[registry.host]!.manifestsPut, 1);
  assert.equal(again.meta.push[registry.host]!.tagsUnchanged, 3);
});
