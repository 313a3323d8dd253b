/**
 * `stowage executor` end to end: a real registry (base image pulled from it, result pushed to it),
 * bubblewrap for RUN, skopeo as the independent reader of everything written.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pushBusybox } from '../helpers/busybox-image.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

let registry: TestRegistry;
let root: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'stowage-executor-'));
  registry = await startRegistry();
  await pushBusybox(`${registry.host}/base/busybox:1`, join(root, 'seed-cache'));
});

after(async () => {
  await registry?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

const EXECUTOR = new URL('../../src/cli/executor.ts', import.meta.url).pathname;

/**
 * Runs the executor in a child process (as the CLI would), so its output and exit code are real
 * and the test runner's own stdout is never touched.
 */
async function executor(argv: string[], prefix: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = `const { runExecutor } = await import(${JSON.stringify(EXECUTOR)}); process.exitCode = await runExecutor(process.argv.slice(1));`;
  const [file, ...args] = [...prefix, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script, '--', ...argv] as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function context(name: string, files: Record<string, string>): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  for (const [f, content] of Object.entries(files)) writeFileSync(join(dir, f), content);
  return dir;
}

test('pulls the base from a registry, runs RUN, pushes, and writes every local output and digest file', async () => {
  const ctx = context('app', {
    Dockerfile: `FROM ${registry.host}/base/busybox:1\nARG WHO\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt > /copy.txt && echo "$WHO" >> /copy.txt\n`,
    'hello.txt': 'hello\n',
  });
  const dest = `${registry.host}/apps/app:v1`;
  const layout = join(root, 'app-layout');
  const tar = join(root, 'app.tar');
  const digestFile = join(root, 'app.digest');
  const nameFile = join(root, 'app.name');
  const nameTagFile = join(root, 'app.nametag');
  const r = await executor([
    '--context', ctx, '--dockerfile=Dockerfile', '--destination', dest, '-d', `oci:${layout}:v1`,
    '--tar-path', tar, '--digest-file', digestFile, '--image-name-with-digest-file', nameFile,
    '--image-name-tag-with-digest-file', nameTagFile, '--cache-dir', join(root, 'cache'), '--reproducible',
    '--build-arg', 'WHO=executor', '--label', 'built.by=stowage', '--isolation=bwrap', '--verbosity=warn',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const digest = readFileSync(digestFile, 'utf8');
  assert.match(digest, /^sha256:[0-9a-f]{64}$/);
  assert.equal(readFileSync(nameFile, 'utf8'), `${registry.host}/apps/app@${digest}\n`);
  assert.equal(readFileSync(nameTagFile, 'utf8'), `${dest}@${digest}\n`);
  assert.match(r.stdout, new RegExp(`${dest} ${digest}`));

  const pushed = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${dest}`], { encoding: 'utf8' })) as { Digest: string; Labels: Record<string, string>; Layers: string[]; Created: string };
  assert.equal(pushed.Digest, digest);
  assert.equal(pushed.Labels['built.by'], 'stowage');
  assert.equal(pushed.Layers.length, 4, 'two busybox layers + COPY + RUN');
  assert.equal(pushed.Created, '1970-01-01T00:00:00Z', '--reproducible without SOURCE_DATE_EPOCH means epoch 0');
  const local = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${layout}:v1`], { encoding: 'utf8' })) as { Digest: string };
  assert.equal(local.Digest, digest);
  const archived = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${tar}`], { encoding: 'utf8' })) as { RepoTags: string[]; Layers: string[] };
  assert.equal(archived.Layers.length, 4);
  const archiveManifest = JSON.parse(execFileSync('tar', ['-xOf', tar, 'manifest.json'], { encoding: 'utf8' })) as { RepoTags: string[] }[];
  assert.deepEqual(archiveManifest[0]!.RepoTags, [dest], '--tar-path tags the archive with the destinations');

  // The RUN really ran with the build arg: unpack the pushed layers through skopeo + umoci.
  const copied = join(root, 'app-copy');
  execFileSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${dest}`, `oci:${copied}:x`], { stdio: 'pipe' });
  execFileSync('umoci', ['unpack', '--image', `${copied}:x`, join(root, 'app-bundle')], { stdio: 'pipe' });
  assert.equal(readFileSync(join(root, 'app-bundle/rootfs/copy.txt'), 'utf8'), 'hello\nexecutor\n');
});

test('tar:// contexts and --no-push: registry destinations are skipped, local outputs written', async () => {
  const src = context('tarsrc', { Dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\n', 'a.txt': 'a\n', 'ignored.txt': 'x\n', '.dockerignore': 'ignored.txt\n' });
  const tgz = join(root, 'ctx.tar.gz');
  execFileSync('tar', ['-czf', tgz, '-C', src, '.']);
  const layout = join(root, 'tar-layout');
  const r = await executor(['--context', `tar://${tgz}`, '--destination', `${registry.host}/never/pushed:1`, '--no-push', '--oci-layout-path', layout, '--cache-dir', join(root, 'cache')]);
  assert.equal(r.code, 0, r.stderr);
  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${layout}:latest`], { encoding: 'utf8' })) as { Layers: string[] };
  assert.equal(inspect.Layers.length, 1);
  const tags = spawnSync('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/never/pushed:1`], { encoding: 'utf8' });
  assert.notEqual(tags.status, 0, 'nothing was pushed with --no-push');
});

test('--single-snapshot: the stage’s COPY and RUNs become one layer; --cache beside it is ignored with a warning', async () => {
  const ctx = context('single', {
    Dockerfile: `FROM ${registry.host}/base/busybox:1\nCOPY a.txt /a.txt\nRUN cp /a.txt /b.txt\nRUN rm /a.txt\n`,
    'a.txt': 'a\n',
  });
  const out = join(root, 'single-out');
  const r = await executor(['--context', ctx, '--destination', `oci:${out}:x`, '--single-snapshot', '--cache', '--cache-dir', join(root, 'single-cache'), '--isolation=bwrap']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /--cache is ignored with --single-snapshot/);
  const inspected = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${out}:x`], { encoding: 'utf8' })) as { Layers: string[] };
  assert.equal(inspected.Layers.length, 3, 'two busybox layers + one for the stage');
  const top = execFileSync('tar', ['-tzf', join(out, 'blobs', 'sha256', inspected.Layers[2]!.slice('sha256:'.length))], { encoding: 'utf8' }).split('\n');
  assert.ok(top.includes('b.txt') && !top.some((p) => p.includes('a.txt')), `a.txt was made and removed within the stage: ${top.join(' ')}`);
});

test('ADD <url> downloads under the cache dir, not the system temp dir (with --isolation=none that is the image’s own /tmp)', async () => {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('fetched\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/file.txt`;
    const ctx = context('add-url', { Dockerfile: `FROM scratch\nADD ${url} /file.txt\n` });
    const out = join(root, 'add-url-out');
    const r = await executor(['--dockerfile', join(ctx, 'Dockerfile'), '--context', ctx, '--destination', `oci:${out}:x`, '--cache-dir', join(root, 'add-url-cache')], [], { ...process.env, TMPDIR: join(root, 'no-such-tmp') });
    assert.equal(r.code, 0, r.stderr);
    const inspected = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${out}:x`], { encoding: 'utf8' })) as { Layers: string[] };
    assert.equal(inspected.Layers.length, 1);
  } finally {
    server.close();
  }
});

test('a failing build exits 1 with file:line and writes no destination', async () => {
  const ctx = context('bad', { Dockerfile: `FROM ${registry.host}/base/busybox:1\nRUN echo about to fail && exit 7\n` });
  const layout = join(root, 'bad-layout');
  const r = await executor(['-c', ctx, '-d', `oci:${layout}`, '--cache-dir', join(root, 'cache')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Dockerfile:2:1: RUN \/bin\/sh -c echo about to fail && exit 7 failed with exit code 7/);
  assert.match(r.stderr, /about to fail/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.ok(!existsSync(layout));
});

/** Runs the executor as root without the given capabilities (gone from the bounding set, so from every child too). */
const withoutCaps = (caps: string[]) => ['setpriv', `--bounding-set=${caps.map((c) => `-${c}`).join(',')}`, '--inh-caps=-all', '--'];
const isRoot = process.getuid?.() === 0;

test('root without CAP_SYS_ADMIN: the probe finds bubblewrap unusable (as a step would) and RUN steps run chrooted', { skip: !isRoot && 'needs root' }, async () => {
  const ctx = context('nocap', { Dockerfile: `FROM ${registry.host}/base/busybox:1\nRUN echo ran > /ran.txt\n` });
  const layout = join(root, 'nocap-layout');
  const r = await executor(['-c', ctx, '-d', `oci:${layout}`, '--cache-dir', join(root, 'nocap-cache')], withoutCaps(['sys_admin']));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^stowage executor: RUN isolation: chroot \(bubblewrap cannot create namespaces here/);
  assert.ok(existsSync(layout));
});

test('root without CAP_SYS_ADMIN and CAP_SYS_CHROOT: the probe’s error is the one reported, before any step line, and nothing is written', { skip: !isRoot && 'needs root' }, async () => {
  const ctx = context('nosandbox', { Dockerfile: `FROM ${registry.host}/base/busybox:1\nCOPY Dockerfile /d\nRUN echo never\n` });
  const layout = join(root, 'nosandbox-layout');
  const r = await executor(['-c', ctx, '-d', `oci:${layout}`, '--cache-dir', join(root, 'nosandbox-cache')], withoutCaps(['sys_admin', 'sys_chroot']));
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^stowage: error: cannot sandbox RUN steps here: bubblewrap cannot create namespaces here .*; and chroot is not permitted/);
  assert.match(r.stderr, /hint: .*--isolation=none/);
  assert.doesNotMatch(r.stderr, /#0 |never/, 'no step line, no step ran');
  assert.ok(!existsSync(layout));
});
