/**
 * examples/ci: each example is parsed (YAML with the `yaml` package; the Jenkinsfile's `sh '…'`
 * steps, `environment {}` values and pod YAML by extraction) and the stowage command it contains
 * is run as written against the loopback registry with Basic auth — only the registry host, the
 * in-image paths (/stowage/bin/stowage, /stowage/.docker, /workspace) and the CI's predefined
 * variables are substituted. The results are checked with skopeo.
 *
 * The commands run on the host (stowage from this checkout's sources); test/e2e/unprivileged
 * runs the Kubernetes Job's container spec in a real unprivileged container.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { busyboxLayout } from '../helpers/busybox-image.js';
import { MINIMAL_CAPS, mustRun, REPO, runCommand, writeSourceLauncher } from './executor-image.js';

const EXAMPLES = join(REPO, 'examples', 'ci');
const EXAMPLE_REGISTRY = 'registry.example.com';

let root: string;
let registry: TestRegistry;
let stowage: string;
let ctx: string;
let dockerConfig: string;

/** What `kubectl create secret docker-registry` stores as `.dockerconfigjson`. */
function dockerConfigJson(host: string, user: string, password: string): string {
  return JSON.stringify({ auths: { [host]: { username: user, password, auth: Buffer.from(`${user}:${password}`).toString('base64') } } });
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'stowage-ci-examples-'));
  registry = await startRegistry({ auth: 'htpasswd' });
  stowage = writeSourceLauncher(root);
  dockerConfig = join(root, 'docker-config');
  mkdirSync(dockerConfig);
  writeFileSync(join(dockerConfig, 'config.json'), dockerConfigJson(registry.host, registry.username, registry.password));
  const env = { ...process.env, DOCKER_CONFIG: dockerConfig, STOWAGE_CACHE_DIR: join(root, 'cache') };
  const bb = await busyboxLayout();
  await mustRun(stowage, ['copy', '--quiet', bb.ref, `${registry.host}/base/busybox:1`], { env });
  ctx = join(root, 'project');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${registry.host}/base/busybox:1\nCOPY app.txt /app.txt\nRUN cat /app.txt > /built.txt\n`);
  writeFileSync(join(ctx, 'app.txt'), 'from CI\n');
});

after(async () => {
  await registry?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Replaces the example's registry and the paths that exist only inside stowage's image. */
function localize(text: string, paths: Record<string, string> = {}): string {
  let out = text.split(EXAMPLE_REGISTRY).join(registry.host).split('/stowage/bin/stowage').join(stowage).split('/stowage/.docker').join(dockerConfig);
  for (const [from, to] of Object.entries(paths)) out = out.split(from).join(to);
  return out;
}

async function digestInRegistry(ref: string): Promise<string> {
  const r = await mustRun('skopeo', ['inspect', '--tls-verify=false', '--creds', `${registry.username}:${registry.password}`, '--format', '{{.Digest}}', `docker://${ref}`]);
  return r.stdout.trim();
}

/** GitLab's expansion of `$VAR` / `${VAR}` in `variables:` values. */
function expandVars(value: string, env: Record<string, string | undefined>): string {
  return value.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_m, name: string) => env[name] ?? '');
}

test('GitLab CI: the job script writes config.json from CI variables and builds + pushes with the executor', async () => {
  const doc = parseYaml(readFileSync(join(EXAMPLES, 'gitlab-ci.yml'), 'utf8')) as Record<string, any>;
  const job = doc['build-image'];
  assert.ok(job, 'a build-image job');
  assert.deepEqual(job.image.entrypoint, [''], 'the entrypoint is cleared so GitLab can run the script in a shell');
  assert.match(job.image.name, /stowage\/executor/);
  const script: string[] = job.script;
  assert.ok(script.some((l) => l.includes('/stowage/bin/stowage executor')), 'runs the executor');

  const projectDir = mkdtempSync(join(root, 'gitlab-'));
  for (const f of ['Dockerfile', 'app.txt']) writeFileSync(join(projectDir, f), readFileSync(join(ctx, f)));
  // The config.json the script writes goes to a fresh dir: it must contain working credentials.
  const gitlabDocker = join(root, 'gitlab-docker');
  const predefined: Record<string, string> = {
    CI_REGISTRY: registry.host,
    CI_REGISTRY_USER: registry.username,
    CI_REGISTRY_PASSWORD: registry.password,
    CI_REGISTRY_IMAGE: `${registry.host}/group/project`,
    CI_COMMIT_SHORT_SHA: 'abc1234',
    CI_PROJECT_DIR: projectDir,
  };
  const variables = Object.fromEntries(Object.entries(job.variables as Record<string, string>).map(([k, v]) => [k, expandVars(v, predefined)]));
  const lines = script.map((l) => localize(l).split(dockerConfig).join(gitlabDocker));
  const r = await runCommand('/bin/sh', ['-ec', lines.join('\n')], {
    // DOCKER_CONFIG as stowage's image sets it (ENV in deploy/Dockerfile), relocated like the path.
    env: { PATH: process.env.PATH, HOME: root, STOWAGE_CACHE_DIR: join(root, 'cache'), DOCKER_CONFIG: gitlabDocker, ...predefined, ...variables },
    cwd: projectDir,
  });
  assert.equal(r.code, 0, r.stderr);
  const digest = readFileSync(join(projectDir, 'image.digest'), 'utf8').trim();
  assert.equal(await digestInRegistry(`${registry.host}/group/project:abc1234`), digest);
  assert.ok(!(r.stdout + r.stderr).includes(registry.password), 'the password is not echoed');
});

test('Jenkinsfile: the pod mounts the registry secret as /stowage/.docker/config.json; the sh step builds and pushes', async () => {
  const text = readFileSync(join(EXAMPLES, 'Jenkinsfile'), 'utf8');
  const podYaml = /yaml\s+'''([\s\S]*?)'''/.exec(text)?.[1];
  assert.ok(podYaml, 'the kubernetes agent has a pod yaml');
  const pod = parseYaml(podYaml) as any;
  const container = pod.spec.containers.find((c: any) => c.name === 'stowage');
  assert.match(container.image, /stowage\/executor/);
  const mount = container.volumeMounts.find((m: any) => m.mountPath === '/stowage/.docker');
  assert.ok(mount, 'the secret is mounted where DOCKER_CONFIG points');
  const volume = pod.spec.volumes.find((v: any) => v.name === mount.name);
  assert.deepEqual(volume.secret.items, [{ key: '.dockerconfigjson', path: 'config.json' }]);
  assert.ok(!container.securityContext?.privileged, 'not privileged');

  const environment = Object.fromEntries([...(/environment\s*\{([^}]*)\}/.exec(text)?.[1] ?? '').matchAll(/(\w+)\s*=\s*'([^']*)'/g)].map((m) => [m[1]!, localize(m[2]!)]));
  assert.equal(environment['REGISTRY'], registry.host);
  const steps = [...text.matchAll(/\bsh\s+'([^']*)'/g)].map((m) => m[1]!);
  assert.equal(steps.length, 1);
  assert.match(steps[0]!, /^\/stowage\/bin\/stowage executor /);
  const workspace = mkdtempSync(join(root, 'jenkins-'));
  for (const f of ['Dockerfile', 'app.txt']) writeFileSync(join(workspace, f), readFileSync(join(ctx, f)));
  const r = await runCommand('/bin/sh', ['-ec', localize(steps[0]!)], {
    env: { PATH: process.env.PATH, HOME: root, STOWAGE_CACHE_DIR: join(root, 'cache'), DOCKER_CONFIG: dockerConfig, WORKSPACE: workspace, GIT_COMMIT: 'deadbeef', ...environment },
    cwd: workspace,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await digestInRegistry(`${registry.host}/team/app:deadbeef`), readFileSync(join(workspace, 'image.digest'), 'utf8').trim());
});

test('Kubernetes Job: secret as config.json at /stowage/.docker, read-only context, minimal capabilities; its args build and push', async () => {
  const job = parseYaml(readFileSync(join(EXAMPLES, 'k8s-job.yaml'), 'utf8')) as any;
  assert.equal(job.kind, 'Job');
  const pod = job.spec.template.spec;
  assert.equal(pod.restartPolicy, 'Never');
  const c = pod.containers[0];
  assert.match(c.image, /stowage\/executor/);
  assert.equal(c.securityContext.privileged, false);
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  assert.deepEqual([...c.securityContext.capabilities.add].sort(), [...MINIMAL_CAPS].sort(), 'the documented capability list');
  const docker = c.volumeMounts.find((m: any) => m.mountPath === '/stowage/.docker');
  assert.deepEqual(pod.volumes.find((v: any) => v.name === docker.name).secret.items, [{ key: '.dockerconfigjson', path: 'config.json' }]);
  assert.equal(c.volumeMounts.find((m: any) => m.mountPath === '/workspace').readOnly, true);
  assert.equal(c.env.find((e: any) => e.name === 'DOCKER_CONFIG').value, '/stowage/.docker');

  const args: string[] = c.args.map((a: string) => localize(a, { 'dir:///workspace': `dir://${ctx}` }));
  const r = await runCommand(stowage, ['executor', ...args, '--cache-dir', join(root, 'cache')], {
    env: { PATH: process.env.PATH, HOME: root, DOCKER_CONFIG: dockerConfig },
    cwd: ctx,
  });
  assert.equal(r.code, 0, r.stderr);
  const dest = args.find((a) => a.startsWith('--destination='))!.slice('--destination='.length);
  assert.ok(dest.startsWith(registry.host));
  const pushedLine = r.stdout.split('\n').find((l) => l.startsWith(dest));
  assert.ok(pushedLine, r.stdout);
  assert.equal(await digestInRegistry(dest), pushedLine.split(' ')[1]);
});

test('bad input: no config.json for a registry that needs credentials → one error naming the registry and what to provide', async (t) => {
  const empty = join(root, 'empty-docker-config');
  mkdirSync(empty);
  const r = await runCommand(stowage, ['executor', '--context', ctx, '--destination', `${registry.host}/team/app:nocreds`, '--cache-dir', join(root, 'cache'), '--verbosity=warn'], {
    env: { PATH: process.env.PATH, HOME: root, DOCKER_CONFIG: empty },
    cwd: ctx,
  });
  t.diagnostic(r.stderr.trim());
  assert.notEqual(r.code, 0);
  const errors = r.stderr.split('\n').filter((l) => /^stowage[^:]*: error/.test(l));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, new RegExp(registry.host.replace(/\./g, '\\.')));
  assert.match(r.stderr, /hint: .*(config\.json|DOCKER_CONFIG|docker login)/, r.stderr);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
});
