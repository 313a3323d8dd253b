/**
 * The GitHub Action's entry script (deploy/github-action/entry.mjs), run the way the runner runs
 * it: a child `node` process with INPUT_* variables, a GITHUB_OUTPUT file and RUNNER_TEMP.
 *
 * A recording `stowage` stands in for the build where the test is about what the script does
 * around it (argv, the temporary DOCKER_CONFIG, outputs, clean-up); the last test runs the real
 * `stowage build` against the loopback registry with Basic auth.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../helpers/registry.js';
import { busyboxLayout } from '../helpers/busybox-image.js';
import { DEPLOY, mustRun, REPO, runCommand, writeSourceLauncher } from './executor-image.js';

const ENTRY = join(DEPLOY, 'github-action', 'entry.mjs');
const PASSWORD = 'hunter2-Sup3r-s3cret';

let root: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'stowage-action-'));
});
after(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Pure: the `name<<DELIM … DELIM` blocks of a $GITHUB_OUTPUT file. */
function parseGithubOutput(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([A-Za-z0-9_-]+)<<(.+)$/.exec(lines[i]!);
    if (m) {
      const end = lines.indexOf(m[2]!, i + 1);
      assert.ok(end > i, `unterminated output ${m[1]}`);
      out[m[1]!] = lines.slice(i + 1, end).join('\n');
      i = end;
    } else if (lines[i]!.includes('=')) {
      const eq = lines[i]!.indexOf('=');
      out[lines[i]!.slice(0, eq)] = lines[i]!.slice(eq + 1);
    }
  }
  return out;
}

const STUB = `#!/usr/bin/env node
// Records what the action gave stowage, then writes metadata like \`stowage build --metadata-file\`.
const fs = require('node:fs');
const path = require('node:path');
const argv = process.argv.slice(2);
const dc = process.env.DOCKER_CONFIG;
const record = {
  argv,
  dockerConfig: dc,
  configJson: dc && fs.existsSync(path.join(dc, 'config.json')) ? JSON.parse(fs.readFileSync(path.join(dc, 'config.json'), 'utf8')) : null,
  configMode: dc && fs.existsSync(path.join(dc, 'config.json')) ? fs.statSync(path.join(dc, 'config.json')).mode & 0o777 : null,
  envKeys: Object.keys(process.env),
  envHasPassword: Object.values(process.env).some((v) => v && v.includes(${JSON.stringify(PASSWORD)})),
};
fs.writeFileSync(process.env.STUB_RECORD, JSON.stringify(record));
const i = argv.indexOf('--metadata-file');
if (i >= 0 && process.env.STUB_EXIT !== '3') {
  fs.writeFileSync(argv[i + 1], JSON.stringify({ images: { app: { digest: 'sha256:' + 'a'.repeat(64), destinations: ['r.example/app:1'] }, worker: { digest: 'sha256:' + 'b'.repeat(64) } } }));
}
process.exit(Number(process.env.STUB_EXIT || 0));
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  record?: { argv: string[]; dockerConfig?: string; configJson: any; configMode: number | null; envKeys: string[]; envHasPassword: boolean };
  runnerTemp: string;
}

async function runAction(name: string, inputs: Record<string, string>, extraEnv: Record<string, string> = {}): Promise<Run> {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true }); // a test may have prepared dir/home already
  const stub = join(dir, 'stowage');
  writeFileSync(stub, STUB);
  chmodSync(stub, 0o755);
  const runnerTemp = join(dir, 'runner-temp');
  mkdirSync(runnerTemp);
  const workspace = join(dir, 'workspace');
  mkdirSync(workspace);
  writeFileSync(join(workspace, 'stowage.yaml'), 'version: 1\nimages: {}\n');
  const githubOutput = join(dir, 'github-output');
  writeFileSync(githubOutput, 'earlier=kept\n');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: join(dir, 'home'),
    GITHUB_ACTIONS: 'true',
    GITHUB_OUTPUT: githubOutput,
    GITHUB_WORKSPACE: workspace,
    RUNNER_TEMP: runnerTemp,
    STUB_RECORD: join(dir, 'record.json'),
    INPUT_STOWAGE: stub,
    ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase().replace(/-/g, '_')}`, v])),
    ...extraEnv,
  };
  const r = await runCommand(process.execPath, [ENTRY], { env, cwd: workspace });
  const recordPath = join(dir, 'record.json');
  return {
    ...r,
    outputs: parseGithubOutput(readFileSync(githubOutput, 'utf8')),
    ...(existsSync(recordPath) ? { record: JSON.parse(readFileSync(recordPath, 'utf8')) } : {}),
    runnerTemp,
  };
}

test('passes file, selection, push and cache-repo to stowage build; sets metadata and digests outputs', async () => {
  const r = await runAction('outputs', { file: 'stowage.yaml', images: 'app, worker\nbase', push: 'false', 'cache-repo': 'r.example/cache' });
  assert.equal(r.code, 0, r.stderr);
  const argv = r.record!.argv;
  assert.deepEqual(argv.slice(0, 3), ['build', '-f', 'stowage.yaml']);
  assert.equal(argv[3], '--metadata-file');
  assert.deepEqual(argv.slice(5), ['--no-push', '--cache-repo', 'r.example/cache', 'app', 'worker', 'base']);
  assert.equal(r.outputs['earlier'], 'kept', 'outputs are appended, never overwrite earlier steps\' outputs');
  assert.deepEqual(JSON.parse(r.outputs['digests']!), { app: `sha256:${'a'.repeat(64)}`, worker: `sha256:${'b'.repeat(64)}` });
  assert.deepEqual(Object.keys(JSON.parse(r.outputs['metadata']!).images), ['app', 'worker']);
  assert.deepEqual(readdirSync(r.runnerTemp), [], 'the metadata temp dir is removed');
});

test('credentials go to a private temporary DOCKER_CONFIG only: merged over the existing config, never printed, removed afterwards', async () => {
  const home = join(root, 'creds', 'home');
  mkdirSync(join(home, '.docker'), { recursive: true });
  // The runner's own config: another registry's helper must survive; this registry's helper must not win.
  writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify({ credHelpers: { 'gcr.io': 'gcloud', 'r.example:5000': 'desktop' }, auths: { 'other.example': { auth: 'b3RoZXI6eA==' } } }));
  const r = await runAction('creds', { registry: 'r.example:5000', username: 'ci-bot', password: PASSWORD });
  assert.equal(r.code, 0, r.stderr);
  const rec = r.record!;
  assert.ok(rec.dockerConfig && rec.dockerConfig.startsWith(r.runnerTemp), `DOCKER_CONFIG ${rec.dockerConfig} should be under RUNNER_TEMP`);
  assert.equal(rec.configMode, 0o600);
  assert.equal(Buffer.from(rec.configJson.auths['r.example:5000'].auth, 'base64').toString(), `ci-bot:${PASSWORD}`);
  assert.equal(rec.configJson.auths['other.example'].auth, 'b3RoZXI6eA==');
  assert.deepEqual(rec.configJson.credHelpers, { 'gcr.io': 'gcloud' });
  assert.equal(rec.envHasPassword, false, 'the password is not in stowage\'s environment');
  assert.ok(!rec.envKeys.some((k) => k.startsWith('INPUT_')), 'INPUT_* variables are not passed on');
  assert.ok(!(r.stdout + r.stderr).includes(PASSWORD), 'never echoed');
  assert.ok(!(r.stdout + r.stderr).includes(Buffer.from(`ci-bot:${PASSWORD}`).toString('base64')), 'not even base64-encoded');
  assert.equal(existsSync(rec.dockerConfig!), false, 'the temporary DOCKER_CONFIG is removed');
  assert.ok(!readFileSync(join(home, '.docker', 'config.json'), 'utf8').includes('ci-bot'), 'the runner\'s config is untouched');
});

test('Docker Hub credentials use docker\'s historic config key', async () => {
  const r = await runAction('hub', { username: 'me', password: PASSWORD });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(Object.keys(r.record!.configJson.auths), ['https://index.docker.io/v1/']);
});

test('bad input: one-line errors that say what to do, stowage not run', async () => {
  const missing = await runAction('missing-file', { file: 'nope.yaml' });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope\.yaml does not exist.*actions\/checkout/);
  assert.equal(missing.record, undefined);
  assert.match(missing.stdout, /^::error title=stowage::/m, 'shown as an annotation');

  const half = await runAction('half-creds', { username: 'ci-bot', password: '' });
  assert.equal(half.code, 1);
  assert.match(half.stderr, /'password' is empty \(is the secret set/);
  assert.equal(half.record, undefined);

  const badPush = await runAction('bad-push', { push: 'yes' });
  assert.equal(badPush.code, 1);
  assert.match(badPush.stderr, /input 'push' must be true or false/);
  for (const r of [missing, half, badPush]) assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});

test('a failed build fails the step with stowage\'s exit code and sets no outputs', async () => {
  const r = await runAction('failing', {}, { STUB_EXIT: '3' });
  assert.equal(r.code, 3);
  assert.equal(r.outputs['digests'], undefined);
  assert.deepEqual(readdirSync(r.runnerTemp), []);
});

test('a missing stowage executable is a one-line error naming the input to set', async () => {
  const r = await runAction('no-stowage', {}, { INPUT_STOWAGE: join(root, 'does-not-exist', 'stowage') });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot run .*not found.*'stowage' input/);
});

test('action.yml maps every input to the entry script and exposes its outputs', async () => {
  const { parse } = await import('yaml');
  const action = parse(readFileSync(join(REPO, 'action.yml'), 'utf8')) as {
    inputs: Record<string, unknown>;
    outputs: Record<string, { value: string }>;
    runs: { using: string; steps: Array<{ id?: string; env?: Record<string, string>; run?: string }> };
  };
  assert.equal(action.runs.using, 'composite');
  const step = action.runs.steps.find((s) => s.id === 'build')!;
  assert.ok(step.run?.includes('deploy/github-action/entry.mjs'));
  for (const name of ['file', 'images', 'push', 'cache-repo', 'registry', 'username', 'password', 'stowage']) {
    assert.ok(name in action.inputs, `input ${name}`);
    const envName = `INPUT_${name.toUpperCase().replace(/-/g, '_')}`;
    assert.match(step.env?.[envName] ?? '', new RegExp(`inputs\\.${name.replace(/-/g, '\\-')}`), envName);
  }
  assert.equal(action.outputs['metadata']!.value, '${{ steps.build.outputs.metadata }}');
  assert.equal(action.outputs['digests']!.value, '${{ steps.build.outputs.digests }}');
});

test('with the real stowage build: pushes a two-image spec to a registry with Basic auth and outputs each image\'s digest', async () => {
  const registry = await startRegistry({ auth: 'htpasswd' });
  try {
    const dir = join(root, 'real');
    mkdirSync(dir);
    const launcher = writeSourceLauncher(dir);
    const cacheDir = join(dir, 'cache');
    // The base image the spec builds FROM, pushed with the registry's credentials.
    const seedConfig = join(dir, 'seed-docker');
    mkdirSync(seedConfig);
    writeFileSync(join(seedConfig, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${registry.username}:${registry.password}`).toString('base64') } } }));
    const bb = await busyboxLayout();
    await mustRun(launcher, ['copy', '--quiet', bb.ref, `${registry.host}/base/busybox:1`], { env: { ...process.env, DOCKER_CONFIG: seedConfig, STOWAGE_CACHE_DIR: cacheDir } });

    const workspace = join(dir, 'workspace');
    mkdirSync(join(workspace, 'app'), { recursive: true });
    mkdirSync(join(workspace, 'conf'), { recursive: true });
    writeFileSync(join(workspace, 'app', 'Dockerfile'), `FROM ${registry.host}/base/busybox:1\nRUN echo app > /app.txt\n`);
    writeFileSync(join(workspace, 'conf', 'Dockerfile'), 'FROM scratch\nCOPY settings.conf /etc/settings.conf\n');
    writeFileSync(join(workspace, 'conf', 'settings.conf'), 'x=1\n');
    writeFileSync(
      join(workspace, 'images.yaml'),
      `version: 1\nimages:\n  app:\n    context: app\n    destinations: ["${registry.host}/action/app:1"]\n` +
        `  conf:\n    context: conf\n    destinations: ["${registry.host}/action/conf:1"]\n  unselected:\n    context: conf\n    destinations: ["${registry.host}/action/unselected:1"]\n`,
    );
    const githubOutput = join(dir, 'github-output');
    writeFileSync(githubOutput, '');
    const runnerTemp = join(dir, 'runner-temp');
    mkdirSync(runnerTemp);
    const r = await runCommand(process.execPath, [ENTRY], {
      cwd: workspace,
      env: {
        PATH: process.env.PATH,
        HOME: join(dir, 'home'),
        GITHUB_ACTIONS: 'true',
        GITHUB_OUTPUT: githubOutput,
        RUNNER_TEMP: runnerTemp,
        STOWAGE_CACHE_DIR: cacheDir,
        INPUT_FILE: 'images.yaml',
        INPUT_IMAGES: 'app conf',
        INPUT_PUSH: 'true',
        INPUT_CACHE_REPO: `${registry.host}/action/cache`,
        INPUT_REGISTRY: registry.host,
        INPUT_USERNAME: registry.username,
        INPUT_PASSWORD: registry.password,
        INPUT_STOWAGE: launcher,
      },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!(r.stdout + r.stderr).includes(registry.password), 'the password is never printed');
    const outputs = parseGithubOutput(readFileSync(githubOutput, 'utf8'));
    const digests = JSON.parse(outputs['digests']!) as Record<string, string>;
    assert.deepEqual(Object.keys(digests).sort(), ['app', 'conf'], 'only the selected images');
    for (const name of ['app', 'conf']) {
      const inspect = await mustRun('skopeo', ['inspect', '--tls-verify=false', '--creds', `${registry.username}:${registry.password}`, '--format', '{{.Digest}}', `docker://${registry.host}/action/${name}:1`]);
      assert.equal(inspect.stdout.trim(), digests[name], `${name}: the output digest is what the registry serves`);
    }
    assert.equal(JSON.parse(outputs['metadata']!).status, 'succeeded');
    const cacheTags = await mustRun('skopeo', ['list-tags', '--tls-verify=false', '--creds', `${registry.username}:${registry.password}`, `docker://${registry.host}/action/cache`]);
    assert.ok((JSON.parse(cacheTags.stdout) as { Tags: string[] }).Tags.length > 0, 'cache-repo received step cache entries, with the action\'s credentials');
    assert.deepEqual(readdirSync(runnerTemp), [], 'credentials and metadata temp files are gone');
  } finally {
    await registry.stop();
  }
});
