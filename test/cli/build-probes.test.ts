/**
 * `stowage build` starts the sandbox and overlay probes (child processes) only when it will build:
 * a rebuild whose images are all reused never needs a sandbox, so it runs (and succeeds) where none
 * can be made, while a run that must build still fails with the probe's error and builds nothing.
 * "Where none can be made": root without CAP_SYS_ADMIN and CAP_SYS_CHROOT (setpriv), as in
 * test/cli/executor.test.ts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushBusybox } from '../helpers/busybox-image.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const STOWAGE = join(process.cwd(), 'bin', 'stowage');
const isRoot = process.getuid?.() === 0;
const noSandbox = ['setpriv', '--bounding-set=-sys_admin,-sys_chroot', '--inh-caps=-all', '--'];
let registry: TestRegistry;
let work: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'stowage-probes-'));
  registry = await startRegistry();
  await pushBusybox(`${registry.host}/base/busybox:1`, join(work, 'seed-cache'));
});
after(async () => {
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Meta {
  images: Record<string, { status: string; digest?: string; reused?: boolean }>;
}

/** Asynchronous, so this process keeps reading the registry's log while stowage runs. */
function build(dir: string, prefix: string[] = []): Promise<{ code: number | null; stderr: string; meta?: Meta }> {
  const [file, ...args] = [...prefix, STOWAGE, 'build', '--metadata-file', 'meta.json', '--progress', 'plain'];
  if (file === undefined) throw new Error('nothing to run');
  return new Promise((resolve, reject) => {
    rmSync(join(dir, 'meta.json'), { force: true });
    const child = spawn(file, args, { cwd: dir, env: { ...process.env, STOWAGE_CACHE_DIR: join(work, 'cache'), CI: 'true', NO_COLOR: '1' } });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => {
      const metaFile = join(dir, 'meta.json');
      resolve({ code, stderr, ...(existsSync(metaFile) ? { meta: JSON.parse(readFileSync(metaFile, 'utf8')) as Meta } : {}) });
    });
  });
}

/** Two images FROM busybox with a RUN step each, written to OCI layouts in the project. */
function project(dir: string): void {
  const images: string[] = [];
  for (const name of ['one', 'two']) {
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(join(dir, name, 'note.txt'), `${name}\n`);
    writeFileSync(join(dir, name, 'Dockerfile'), `FROM ${registry.host}/base/busybox:1\nCOPY note.txt /note.txt\nRUN cat /note.txt > /copied.txt\n`);
    images.push(`  ${name}:\n    context: ${name}\n    destinations: ["oci:out/${name}:v1"]`);
  }
  writeFileSync(join(dir, 'stowage.yaml'), `version: 1\nimages:\n${images.join('\n')}\n`);
}

function layoutIndex(dir: string, name: string): string {
  return readFileSync(join(dir, 'out', name, 'index.json'), 'utf8');
}

test('a rebuild whose images are all reused starts no probe: it succeeds where RUN steps cannot be sandboxed, and says nothing about RUN isolation', { skip: !isRoot && 'needs root (setpriv drops capabilities)' }, async () => {
  const dir = join(work, 'reused');
  project(dir);
  const cold = await build(dir);
  assert.equal(cold.code, 0, cold.stderr);
  assert.match(cold.stderr, /^stowage: RUN isolation: /m, 'a run that builds says how RUN steps are isolated');

  const warm = await build(dir, noSandbox);
  assert.equal(warm.code, 0, warm.stderr);
  assert.doesNotMatch(warm.stderr, /RUN isolation|cannot sandbox/);
  for (const name of ['one', 'two']) {
    assert.equal(warm.meta?.images[name]?.reused, true, `${name} reused`);
    assert.equal(warm.meta?.images[name]?.digest, cold.meta?.images[name]?.digest);
  }
});

test('a run that must build fails with the probe’s error where RUN steps cannot be sandboxed, and the changed image is not written', { skip: !isRoot && 'needs root (setpriv drops capabilities)' }, async () => {
  const dir = join(work, 'changed');
  project(dir);
  const cold = await build(dir);
  assert.equal(cold.code, 0, cold.stderr);
  const before = layoutIndex(dir, 'two');

  writeFileSync(join(dir, 'two', 'note.txt'), 'two, changed\n');
  const r = await build(dir, noSandbox);
  assert.notEqual(r.code, 0, r.stderr);
  assert.match(r.stderr, /cannot sandbox RUN steps here/);
  assert.doesNotMatch(r.stderr, /\[two\] \d+: RUN /, 'no step of the changed image ran');
  assert.equal(layoutIndex(dir, 'two'), before, 'the changed image is not written');
});
