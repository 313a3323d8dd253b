/**
 * `stowage build` with the step cache, as a user runs it (bin/stowage, real registry, bwrap):
 * a warm rebuild of an unchanged spec restores every step, uploads no blob and gives identical
 * digests; a one-file edit re-runs only that image's affected steps; `--no-cache` and an image's
 * `noCache` run everything; `stowage plan` shows which steps would hit.
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
let dir: string;

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(STOWAGE, args, { cwd: dir, env: { ...process.env, STOWAGE_CACHE_DIR: join(work, 'cache'), CI: 'true', NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => setTimeout(() => resolve({ code, stdout, stderr }), 100));
  });
}

interface Meta {
  images: Record<string, { status: string; digest?: string; cacheHits?: number }>;
  push: Record<string, { blobsUploaded: number; manifestsPut: number }>;
}

async function buildWithMeta(extra: string[] = []): Promise<{ meta: Meta; stderr: string }> {
  const r = await run(['build', '--metadata-file', 'meta.json', '--progress', 'plain', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return { meta: JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as Meta, stderr: r.stderr };
}

const uploads = (m: Meta) => Object.values(m.push).reduce((n, s) => n + s.blobsUploaded, 0);
/** Steps that ran, per image, from the plain progress log: step lines not followed by CACHED. */
function ranSteps(stderr: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const lines = stderr.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^\[(\S+)\] (\d+): (?!CACHED)/.exec(lines[i]!);
    if (!m) continue;
    const cached = lines.slice(i + 1).find((l) => l.startsWith(`[${m[1]}] ${m[2]}: CACHED`) || l.startsWith(`[${m[1]}] `) && !l.startsWith(`[${m[1]}]   |`));
    if (cached?.startsWith(`[${m[1]}] ${m[2]}: CACHED`)) continue;
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), Number(m[2])]);
  }
  return out;
}

before(async () => {
  registry = await startRegistry();
  work = mkdtempSync(join(tmpdir(), 'stowage-cache-cli-'));
  dir = join(work, 'project');
  mkdirSync(join(dir, 'base'), { recursive: true });
  mkdirSync(join(dir, 'svc'), { recursive: true });
  writeFileSync(join(dir, 'base', 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY etc/ /etc/\n');
  writeFileSync(join(dir, 'base', 'busybox'), readFileSync('/bin/busybox'), { mode: 0o755 });
  mkdirSync(join(dir, 'base', 'etc'));
  writeFileSync(join(dir, 'base', 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(dir, 'svc', 'Dockerfile'), 'FROM image:base\nARG N\nCOPY common.txt /srv/common.txt\nCOPY n${N}.txt /srv/own.txt\nRUN ["/bin/busybox", "sh", "-c", "/bin/busybox cat /srv/common.txt /srv/own.txt > /srv/all"]\nCMD ["/srv/all"]\n');
  writeFileSync(join(dir, 'svc', 'common.txt'), 'common\n');
  const images = [`  base:\n    context: base\n    destinations: [${registry.host}/c/base:1]`];
  for (let i = 0; i < 2; i++) {
    writeFileSync(join(dir, 'svc', `n${i}.txt`), `svc ${i}\n`);
    images.push(`  svc${i}:\n    context: svc\n    args: { N: "${i}" }\n    destinations: [${registry.host}/c/svc${i}:1]`);
  }
  images.push(`  fresh:\n    context: svc\n    noCache: true\n    args: { N: "0" }\n    destinations: [oci:out/fresh]`);
  writeFileSync(join(dir, 'stowage.yaml'), `version: 1\nimages:\n${images.join('\n')}\n`);
});

after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('warm rebuild: every step hits, zero blob uploads, identical digests; one file edit re-runs only its steps; noCache and --no-cache run', async () => {
  const cold = await buildWithMeta();
  assert.equal(cold.meta.images['svc0']!.cacheHits ?? 0, 0);
  assert.ok(uploads(cold.meta) > 0);

  const warm = await buildWithMeta();
  for (const name of ['base', 'svc0', 'svc1']) {
    assert.equal(warm.meta.images[name]!.digest, cold.meta.images[name]!.digest, `${name}: identical digest`);
  }
  assert.equal(warm.meta.images['base']!.cacheHits, 2);
  assert.equal(warm.meta.images['svc1']!.cacheHits, 5, 'ARG, 2 COPY, RUN, CMD');
  assert.equal(uploads(warm.meta), 0, 'zero blob uploads');
  const ranWarm = ranSteps(warm.stderr);
  assert.deepEqual([...ranWarm.keys()], ['fresh'], 'only the noCache image ran steps');
  assert.deepEqual(ranWarm.get('fresh'), [2, 3, 4, 5, 6]);

  // One context file of one image changes: svc1's COPY of it, and the RUN after it, run; nothing else.
  writeFileSync(join(dir, 'svc', 'n1.txt'), 'svc 1, edited\n');
  const edited = await buildWithMeta();
  const ran = ranSteps(edited.stderr);
  ran.delete('fresh');
  assert.deepEqual(Object.fromEntries(ran), { svc1: [4, 5, 6] });
  assert.notEqual(edited.meta.images['svc1']!.digest, cold.meta.images['svc1']!.digest);
  assert.equal(edited.meta.images['svc0']!.digest, cold.meta.images['svc0']!.digest);

  const nocache = await buildWithMeta(['--no-cache', 'svc0']);
  assert.deepEqual(ranSteps(nocache.stderr).get('svc0'), [2, 3, 4, 5, 6]);
  assert.equal(nocache.meta.images['svc0']!.cacheHits ?? 0, 0);
});

test('plan shows per step whether it would hit the local cache, with keys in JSON', async () => {
  // Runs after the builds above (node:test runs a file's tests in order).
  writeFileSync(join(dir, 'base', 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnew:x:1:1::/:/bin/sh\n');
  const r = await run(['plan', '--format', 'json', 'base']);
  assert.equal(r.code, 0, r.stderr);
  const graph = JSON.parse(r.stdout) as { vertices: { steps: { line: number; cache?: { status: string; key?: string } }[] }[] };
  const steps = graph.vertices[0]!.steps.slice(1);
  assert.deepEqual(steps.map((s) => s.cache?.status), ['hit', 'miss'], 'the busybox COPY is cached, the edited etc/ is not');
  assert.match(steps[0]!.cache!.key!, /^sha256:[0-9a-f]{64}$/);
  // Entries older than the TTL are misses, as for the build (they were written seconds ago).
  await new Promise((r) => setTimeout(r, 1_100));
  const expired = await run(['plan', '--format', 'json', '--cache-ttl', '1s', 'base']);
  const expiredSteps = (JSON.parse(expired.stdout) as typeof graph).vertices[0]!.steps.slice(1);
  assert.deepEqual(expiredSteps.map((s) => s.cache?.status), ['miss', 'miss']);
  const badTtl = await run(['plan', '--cache-ttl', 'soon']);
  assert.equal(badTtl.code, 2);
  assert.match(badTtl.stderr, /--cache-ttl must be a duration/);
  const text = await run(['plan', 'svc0']);
  assert.match(text.stdout, /2: \[cached\] COPY busybox/);
  assert.match(text.stdout, /\[\?\] +COPY common.txt/, 'steps on an image of this spec are unknown until it is built');
});

test('plan --resolve looks external bases up in their registry, so the steps on them show hit or miss; without it they show [?]', async () => {
  // An image that is no destination of the spec: an external base, known only through its registry.
  const { execFileSync } = await import('node:child_process');
  execFileSync('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${registry.host}/c/base:1`, `docker://${registry.host}/ext/base:1`], { stdio: 'pipe' });
  mkdirSync(join(dir, 'ext'), { recursive: true });
  writeFileSync(join(dir, 'ext', 'Dockerfile'), `FROM ${registry.host}/ext/base:1\nCOPY hello.txt /hello.txt\nENV GREETING=hello\n`);
  writeFileSync(join(dir, 'ext', 'hello.txt'), 'hello\n');
  writeFileSync(join(dir, 'ext.yaml'), `version: 1\ncache: { repo: ${registry.host}/ext-cache }\nimages:\n  ext:\n    context: ext\n    destinations: [oci:out/ext]\n`);
  const built = await run(['build', '-f', 'ext.yaml', '--progress', 'plain']);
  assert.equal(built.code, 0, built.stderr);
  const offline = await run(['plan', '-f', 'ext.yaml']);
  assert.match(offline.stdout, /\[\?\] +COPY hello.txt/, 'offline, an external base has no digest: unknown');
  const resolved = await run(['plan', '-f', 'ext.yaml', '--resolve']);
  assert.equal(resolved.code, 0, resolved.stderr);
  assert.match(resolved.stdout, /\[cached\] COPY hello.txt/);
  assert.match(resolved.stdout, /\[cached\] ENV GREETING=hello/);
  // A fresh machine: nothing in its local cache, the entries in the spec's cache repo.
  const fresh = await run(['plan', '-f', 'ext.yaml', '--resolve', '--cache-dir', join(work, 'fresh-cache')]);
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.match(fresh.stdout, /\[cached\] COPY hello.txt/, 'found in the cache repo');
  writeFileSync(join(dir, 'ext', 'hello.txt'), 'hello again\n');
  const edited = await run(['plan', '-f', 'ext.yaml', '--resolve', '--format', 'json']);
  const graph = JSON.parse(edited.stdout) as { vertices: { steps: { cache?: { status: string } }[] }[] };
  assert.deepEqual(graph.vertices[0]!.steps.slice(1).map((s) => s.cache?.status), ['miss', 'miss'], 'the edited file and every step after it would run');
  // A base that cannot be resolved is a warning; the plan is still printed, its steps unknown.
  writeFileSync(join(dir, 'ext', 'Dockerfile'), `FROM ${registry.host}/ext/missing:1\nCOPY hello.txt /hello.txt\n`);
  const missing = await run(['plan', '-f', 'ext.yaml', '--resolve']);
  assert.equal(missing.code, 0, missing.stderr);
  assert.match(missing.stderr, /warning: cannot resolve .*ext\/missing:1/);
  assert.match(missing.stdout, /\[\?\] +COPY hello.txt/);
});
