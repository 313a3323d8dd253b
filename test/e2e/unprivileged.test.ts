/**
 * stowage inside an unprivileged container, the way Kaniko is used: a private Docker daemon
 * (test/helpers/dockerd.ts) loads stowage's own image (built by stowage into a docker-archive),
 * then `docker run` — not privileged, default seccomp profile — runs `stowage executor` against a
 * read-only context. There, unshare and mount are refused but chroot works: stowage must pick
 * chroot isolation and the walk snapshotter by itself, say so once, build RUN steps correctly and
 * push to the loopback registry, where skopeo and umoci (independent clients) check the result.
 *
 * Runs: default capabilities; `--cap-drop=ALL` + the documented minimal set (must give the
 * identical image, byte for byte, with --reproducible); no capabilities at all (clear error);
 * bad input: no context mounted, wrong registry credentials; and the fallback that error offers,
 * `--isolation=none` with no capabilities (the container's own / as the build root, Kaniko's
 * model), single- and multi-stage.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { startDockerd, type TestDockerd } from '../helpers/dockerd.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { busyboxLayout } from '../helpers/busybox-image.js';
import { buildExecutorImage, MINIMAL_CAPS, mustRun, REPO, runCommand, type ExecutorImage } from './executor-image.js';

let work: string;
let dockerd: TestDockerd | undefined;
let registry: TestRegistry | undefined;
let authRegistry: TestRegistry | undefined;
let image: ExecutorImage;
let ctx: string;

const APP_DOCKERFILE = (base: string) => `FROM ${base}
COPY hello.txt /hello.txt
COPY --chown=1000:1000 hello.txt /home/app/owned.txt
RUN cat /hello.txt > /from-run.txt && echo built >> /from-run.txt && mkdir -p /srv/private && chown 1000:1000 /srv/private && chmod 0700 /srv/private
USER app
RUN id -u > /srv/private/as-app.txt && chmod 0600 /srv/private/as-app.txt
USER root
RUN cat /srv/private/as-app.txt >> /from-run.txt
`;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'stowage-e2e-unpriv-'));
  // Fails (never skips) without docker.io: startDockerd's error names the package.
  [dockerd, registry, authRegistry] = await Promise.all([startDockerd(), startRegistry(), startRegistry({ auth: 'htpasswd' })]);
  image = await buildExecutorImage(join(work, 'image'), registry.host);
  const loaded = await dockerd.docker(['load', '-i', image.archive]);
  assert.equal(loaded.code, 0, `docker load of stowage's docker-archive failed: ${loaded.stderr}`);
  assert.match(loaded.stdout, new RegExp(`Loaded image: ${image.name}`));
  // The RUN steps need a shell: the busybox image, pushed with stowage's own copy command.
  const bb = await busyboxLayout();
  await mustRun(image.stowage, ['copy', '--quiet', bb.ref, `${registry.host}/base/busybox:1`], { env: image.env });
  ctx = join(work, 'context');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'Dockerfile'), APP_DOCKERFILE(`${registry.host}/base/busybox:1`));
  writeFileSync(join(ctx, 'hello.txt'), 'hello\n');
  // Readable by anyone: the context is bind-mounted read-only into the container.
  chmodSync(work, 0o755);
});

after(async () => {
  await dockerd?.stop();
  await registry?.stop();
  await authRegistry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

interface RunOptions {
  caps?: string[] | 'none';
  mountContext?: boolean;
  extraVolumes?: string[];
  args: string[];
}

/** `docker run --rm --network host` the executor image; never --privileged. */
async function runExecutorContainer(o: RunOptions) {
  const docker = dockerd!;
  const args = ['run', '--rm', '--network', 'host'];
  if (o.caps !== undefined) {
    args.push('--cap-drop=ALL');
    if (o.caps !== 'none') for (const c of o.caps) args.push('--cap-add', c);
  }
  if (o.mountContext !== false) args.push('-v', `${ctx}:/workspace:ro`);
  for (const v of o.extraVolumes ?? []) args.push('-v', v);
  args.push(image.name, ...o.args);
  return docker.docker(args);
}

function isolationLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /isolation/i.test(l) && /chroot/.test(l));
}

async function skopeoDigest(ref: string): Promise<string> {
  const r = await mustRun('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${ref}`]);
  return r.stdout.trim();
}

let defaultCapsDigest = '';

test('a machine without dockerd fails (never skips) with a message naming the Debian package', async () => {
  await assert.rejects(startDockerd({ binary: join(work, 'no-such-dir', 'dockerd') }), /Debian package docker\.io/);
});

test('in a default (unprivileged) container: picks chroot + walk by itself, says why once, builds RUN steps and pushes', async () => {
  const dest = `${registry!.host}/e2e/app:1`;
  const r = await runExecutorContainer({ args: ['--context', '/workspace', '--dockerfile', 'Dockerfile', '--destination', dest, '--reproducible'] });
  assert.equal(r.code, 0, `executor failed in the container:\n${r.stderr}`);

  const pushed = r.stdout.trim().split('\n').find((l) => l.startsWith(dest));
  assert.ok(pushed, r.stdout);
  defaultCapsDigest = pushed.split(' ')[1]!;
  assert.equal(await skopeoDigest(dest), defaultCapsDigest);

  // The image's filesystem, read by skopeo + umoci: RUN output, the USER step's uid and its files.
  const layout = join(work, 'check-layout');
  const bundle = join(work, 'check-bundle');
  await mustRun('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${dest}`, `oci:${layout}:app`]);
  await mustRun('umoci', ['unpack', '--image', `${layout}:app`, bundle]);
  const rootfs = join(bundle, 'rootfs');
  assert.equal(readFileSync(join(rootfs, 'from-run.txt'), 'utf8'), 'hello\nbuilt\n1000\n');
  const asApp = statSync(join(rootfs, 'srv/private/as-app.txt'));
  assert.equal(asApp.uid, 1000, 'a file written by a USER app step is owned by app');
  assert.equal(asApp.mode & 0o777, 0o600);
  assert.equal(statSync(join(rootfs, 'home/app/owned.txt')).uid, 1000, 'COPY --chown inside the container');
  assert.equal(statSync(join(rootfs, 'srv/private')).mode & 0o777, 0o700);

  // Said once, with the reason: namespaces are refused (bubblewrap cannot set up), chroot is allowed.
  const lines = isolationLines(r.stderr);
  assert.equal(lines.length, 1, `expected exactly one line naming the chosen isolation, got:\n${r.stderr}`);
  // The reason: namespaces are refused (bubblewrap cannot set up), chroot is allowed.
  assert.match(lines[0]!, /namespace|bubblewrap|bwrap/i, lines[0]);
  assert.match(lines[0]!, /walk/, `the line should name the snapshotter too: ${lines[0]}`);
  assert.doesNotMatch(r.stderr, /internal error|MaxListenersExceeded|\n\s+at /, r.stderr);
});

test('with --cap-drop=ALL plus only the documented capabilities: the identical image', async () => {
  assert.ok(defaultCapsDigest, 'needs the default-capabilities build of the previous test');
  const dest = `${registry!.host}/e2e/app:minimal-caps`;
  const r = await runExecutorContainer({ caps: MINIMAL_CAPS, args: ['--context', '/workspace', '--dockerfile', 'Dockerfile', '--destination', dest, '--reproducible'] });
  assert.equal(r.code, 0, `executor failed with ${MINIMAL_CAPS.join(',')}:\n${r.stderr}`);
  assert.equal(isolationLines(r.stderr).length, 1, r.stderr);
  assert.equal(await skopeoDigest(dest), defaultCapsDigest, 'same layers, same ownership and modes as with docker\'s default capabilities');
});

test('with no capabilities at all: a clear error naming CAP_SYS_CHROOT and what is left, nothing pushed', async (t) => {
  const dest = `${registry!.host}/e2e/app:no-caps`;
  const r = await runExecutorContainer({ caps: 'none', args: ['--context', '/workspace', '--dockerfile', 'Dockerfile', '--destination', dest] });
  t.diagnostic(r.stderr.trim());
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /CAP_SYS_CHROOT/, r.stderr);
  assert.match(r.stderr, /--isolation=none/, r.stderr);
  assert.match(r.stderr, /throwaway container/, 'the trade-off of --isolation=none is stated');
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, r.stderr);
  const inspect = await runCommand('skopeo', ['inspect', '--tls-verify=false', `docker://${dest}`]);
  assert.notEqual(inspect.code, 0, 'a failed build pushes nothing');
});

test('bad input: no context mounted → one error saying what to mount', async (t) => {
  const r = await runExecutorContainer({ mountContext: false, args: ['--context', '/workspace', '--dockerfile', 'Dockerfile', '--destination', `${registry!.host}/e2e/app:nothing`] });
  t.diagnostic(r.stderr.trim());
  assert.notEqual(r.code, 0);
  const errors = r.stderr.split('\n').filter((l) => /^stowage[^:]*: error/.test(l));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, /the build context \/workspace is empty/, r.stderr);
  assert.match(r.stderr, /hint: mount the context there/, r.stderr);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, r.stderr);
});

test('bad input: wrong credentials in a mounted config.json → one error saying what to fix, secret not echoed', async (t) => {
  const auth = authRegistry!;
  const dockerConfig = join(work, 'wrong-creds');
  mkdirSync(dockerConfig);
  const wrongPassword = 'definitely-wrong-pass-7731';
  const config = { auths: { [auth.host]: { auth: Buffer.from(`${auth.username}:${wrongPassword}`).toString('base64') } } };
  writeFileSync(join(dockerConfig, 'config.json'), JSON.stringify(config));
  chmodSync(dockerConfig, 0o755);
  chmodSync(join(dockerConfig, 'config.json'), 0o644);
  const r = await runExecutorContainer({
    extraVolumes: [`${dockerConfig}:/stowage/.docker:ro`],
    args: ['--context', '/workspace', '--dockerfile', 'Dockerfile', '--destination', `${auth.host}/e2e/app:1`],
  });
  t.diagnostic(r.stderr.trim());
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(auth.host.replace(/\./g, '\\.')), r.stderr);
  assert.match(r.stderr, /credential|unauthori[sz]ed|denied|password/i, r.stderr);
  assert.match(r.stderr, /hint: /, r.stderr);
  assert.ok(!r.stderr.includes(wrongPassword) && !r.stdout.includes(wrongPassword), 'the password never appears in output');
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, r.stderr);
});

test('examples/ci/k8s-job.yaml: its container spec (args, capabilities, secret and context mounts) works as written', async () => {
  const auth = authRegistry!;
  const job = parseYaml(readFileSync(join(REPO, 'examples', 'ci', 'k8s-job.yaml'), 'utf8')) as any;
  const pod = job.spec.template.spec;
  const c = pod.containers[0];
  // The secret volume as the kubelet materialises it: `.dockerconfigjson` projected as config.json.
  const secretDir = join(work, 'k8s-secret');
  mkdirSync(secretDir);
  const dockerconfigjson = JSON.stringify({ auths: { [auth.host]: { username: auth.username, password: auth.password, auth: Buffer.from(`${auth.username}:${auth.password}`).toString('base64') } } });
  const docker = dockerd!;
  const args = ['run', '--rm', '--network', 'host', '--user', String(c.securityContext.runAsUser)];
  for (const d of c.securityContext.capabilities.drop) args.push('--cap-drop', d);
  for (const a of c.securityContext.capabilities.add) args.push('--cap-add', a);
  for (const e of c.env ?? []) args.push('-e', `${e.name}=${e.value}`);
  for (const m of c.volumeMounts) {
    const volume = pod.volumes.find((v: any) => v.name === m.name);
    let source: string;
    if (volume.secret) {
      for (const item of volume.secret.items) {
        assert.equal(item.key, '.dockerconfigjson');
        writeFileSync(join(secretDir, item.path), dockerconfigjson, { mode: 0o644 });
      }
      source = secretDir;
    } else {
      assert.ok(volume.persistentVolumeClaim, `volume ${m.name}`);
      source = ctx;
    }
    args.push('-v', `${source}:${m.mountPath}${m.readOnly ? ':ro' : ''}`);
  }
  const jobArgs: string[] = c.args.map((a: string) => a.split('registry.example.com').join(auth.host));
  args.push(image.name, ...jobArgs);
  const r = await docker.docker(args);
  assert.equal(r.code, 0, r.stderr);
  const dest = jobArgs.find((a) => a.startsWith('--destination='))!.slice('--destination='.length);
  const inspect = await mustRun('skopeo', ['inspect', '--tls-verify=false', '--creds', `${auth.username}:${auth.password}`, '--format', '{{.Digest}}', `docker://${dest}`]);
  assert.equal(inspect.stdout.trim(), defaultCapsDigest, 'the Job (--reproducible, minimal caps) builds the same image as docker\'s defaults');
});

test('the image: Kaniko-like entrypoint and layout, production dependencies only', async () => {
  const docker = dockerd!;
  const inspect = await docker.docker(['image', 'inspect', image.name]);
  assert.equal(inspect.code, 0, inspect.stderr);
  const config = (JSON.parse(inspect.stdout) as Array<{ Config: { Entrypoint: string[]; WorkingDir: string; Env: string[] } }>)[0]!.Config;
  assert.deepEqual(config.Entrypoint, ['/stowage/bin/stowage', 'executor']);
  assert.equal(config.WorkingDir, '/workspace');
  assert.ok(config.Env.includes('DOCKER_CONFIG=/stowage/.docker'), config.Env.join(' '));
  const ls = await docker.docker(['run', '--rm', '--network', 'none', '--entrypoint', '/bin/sh', image.name, '-c', 'ls /stowage/node_modules; stowage --version']);
  assert.equal(ls.code, 0, ls.stderr);
  const modules = ls.stdout.trim().split('\n');
  for (const runtime of ['undici', 'yaml', 'tar-stream']) assert.ok(modules.includes(runtime), `${runtime} is in the image`);
  for (const dev of ['typescript', 'tsx', '@types']) assert.ok(!modules.includes(dev), `${dev} (a dev dependency) is not in the image`);
  assert.match(ls.stdout, /^stowage \d+\.\d+\.\d+/m);
});

/** Pulls `ref` with skopeo and unpacks it with umoci (independent clients): the rootfs path. */
async function unpackPushed(ref: string, name: string): Promise<string> {
  const layout = join(work, `${name}-layout`);
  const bundle = join(work, `${name}-bundle`);
  await mustRun('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:app`]);
  await mustRun('umoci', ['unpack', '--image', `${layout}:app`, bundle]);
  return join(bundle, 'rootfs');
}

/** `docker run` the executor with --isolation=none and no capabilities at all, on a fresh context. */
async function runIsolationNone(name: string, dockerfile: string, dest: string) {
  const noneCtx = join(work, `${name}-context`);
  mkdirSync(noneCtx);
  writeFileSync(join(noneCtx, 'Dockerfile'), dockerfile);
  return dockerd!.docker(['run', '--rm', '--network', 'host', '--cap-drop=ALL', '-v', `${noneCtx}:/workspace:ro`, image.name, '--context', '/workspace', '--destination', dest, '--isolation=none']);
}

test('the fallback the error offers: --isolation=none in a throwaway container with no capabilities puts RUN output into the image', async (t) => {
  const dest = `${registry!.host}/e2e/app:isolation-none`;
  const r = await runIsolationNone('none', `FROM ${registry!.host}/base/busybox:1\nRUN echo from-none > /from-none.txt\n`, dest);
  t.diagnostic(r.stderr.trim());
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /RUN isolation: none \(.*\/\.dockerenv/, 'says once that / is the build root, and why it may be');
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, r.stderr);
  const rootfs = await unpackPushed(dest, 'none');
  assert.equal(readFileSync(join(rootfs, 'from-none.txt'), 'utf8'), 'from-none\n');
  // Only the image's files: nothing of the executor's own container leaks into a layer.
  for (const leaked of ['stowage', 'workspace', 'usr/local/bin/node', '.dockerenv']) assert.ok(!existsSync(join(rootfs, leaked)), `${leaked} is not in the image`);
});

test('--isolation=none, multi-stage: the second stage starts from its own base, and COPY --from sees the first stage\'s RUN output', async () => {
  const base = `${registry!.host}/base/busybox:1`;
  const dest = `${registry!.host}/e2e/app:isolation-none-multi`;
  const r = await runIsolationNone(
    'none-multi',
    [
      `FROM ${base} AS build`,
      'RUN mkdir -p /out && echo built-in-stage-one > /out/artifact.txt && echo stage-one > /stage-one-only.txt',
      `FROM ${base}`,
      'COPY --from=build /out/artifact.txt /artifact.txt',
      'RUN echo from-none > /from-none.txt && cat /artifact.txt >> /from-none.txt && ls /out 2>/dev/null | wc -l > /saw-out.txt',
      '',
    ].join('\n'),
    dest,
  );
  assert.equal(r.code, 0, r.stderr);
  const rootfs = await unpackPushed(dest, 'none-multi');
  assert.equal(readFileSync(join(rootfs, 'artifact.txt'), 'utf8'), 'built-in-stage-one\n');
  assert.equal(readFileSync(join(rootfs, 'from-none.txt'), 'utf8'), 'from-none\nbuilt-in-stage-one\n');
  assert.equal(readFileSync(join(rootfs, 'saw-out.txt'), 'utf8').trim(), '0', 'the second stage\'s RUN did not see the first stage\'s files');
  for (const absent of ['out', 'stage-one-only.txt', 'stowage']) assert.ok(!existsSync(join(rootfs, absent)), `${absent} is not in the final image`);
});

test('--isolation=none with docker\'s default capabilities: USER steps switch uid, and the image is byte-identical to the chroot build', async (t) => {
  assert.ok(defaultCapsDigest, 'needs the default-capabilities build of the chroot test');
  const dest = `${registry!.host}/e2e/app:isolation-none-app`;
  // The same context and Dockerfile as the chroot builds (COPY --chown, RUN as root, USER app).
  const r = await runExecutorContainer({ args: ['--context', '/workspace', '--dockerfile', 'Dockerfile', '--destination', dest, '--reproducible', '--isolation=none'] });
  t.diagnostic(r.stderr.trim());
  assert.equal(r.code, 0, r.stderr);
  const rootfs = await unpackPushed(dest, 'none-app');
  assert.equal(readFileSync(join(rootfs, 'from-run.txt'), 'utf8'), 'hello\nbuilt\n1000\n');
  assert.equal(statSync(join(rootfs, 'srv/private/as-app.txt')).uid, 1000, 'a file written by a USER app step is owned by app');
  assert.equal(await skopeoDigest(dest), defaultCapsDigest, 'same layers, owners, modes and times as the chroot build');
});

/** Runs a shell script in the executor image (the stowage entrypoint replaced by busybox sh). */
async function runShellInExecutor(name: string, dockerfile: string, script: string) {
  const shCtx = join(work, `${name}-context`);
  mkdirSync(shCtx);
  writeFileSync(join(shCtx, 'Dockerfile'), dockerfile);
  return dockerd!.docker(['run', '--rm', '--network', 'host', '-v', `${shCtx}:/workspace:ro`, '--entrypoint', '/bin/sh', image.name, '-c', script]);
}

test('--isolation=none where no container is visible: refused before anything is deleted, naming --force', async (t) => {
  const dest = `${registry!.host}/e2e/app:none-refused`;
  // /.dockerenv removed: stowage sees no container (docker sets no container= for PID 1).
  const r = await runShellInExecutor(
    'none-refused',
    `FROM ${registry!.host}/base/busybox:1\nRUN echo x > /x\n`,
    `rm -f /.dockerenv; /stowage/bin/stowage executor --context /workspace --destination ${dest} --isolation=none; echo "rc=$?"; test -x /usr/local/bin/node && test -d /stowage && echo container-intact`,
  );
  t.diagnostic(r.stderr.trim());
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /rc=1\n/);
  assert.match(r.stdout, /container-intact/, 'nothing was deleted');
  assert.match(r.stderr, /delete the host's files/);
  assert.match(r.stderr, /--force/);
  assert.notEqual((await runCommand('skopeo', ['inspect', '--tls-verify=false', `docker://${dest}`])).code, 0, 'nothing pushed');
});

test('--isolation=none --force --ignore-path: builds anyway; the ignored path survives every stage and stays out of the image', async (t) => {
  const dest = `${registry!.host}/e2e/app:none-forced`;
  const r = await runShellInExecutor(
    'none-forced',
    `FROM ${registry!.host}/base/busybox:1\nRUN echo from-run >> /keep-me/f && echo other > /other\n`,
    `rm -f /.dockerenv; mkdir /keep-me && echo kept > /keep-me/f && ` +
      `/stowage/bin/stowage executor --context /workspace --destination ${dest} --isolation=none --force --ignore-path=/keep-me; echo "rc=$?"; cat /keep-me/f`,
  );
  t.diagnostic(r.stderr.trim());
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /rc=0\nkept\nfrom-run\n/, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /isolation: none \(.*\/ \(--force\)/, r.stderr);
  const rootfs = await unpackPushed(dest, 'none-forced');
  assert.equal(readFileSync(join(rootfs, 'other'), 'utf8'), 'other\n');
  assert.ok(!existsSync(join(rootfs, 'keep-me')), 'an --ignore-path is never snapshotted');
});

test('--isolation=none without the rights to empty /: one error naming the path and the capabilities, nothing pushed', async (t) => {
  const dest = `${registry!.host}/e2e/app:none-no-rights`;
  // A directory of another user, then stowage with an empty bounding set (no CAP_DAC_OVERRIDE/FOWNER).
  const r = await runShellInExecutor(
    'none-no-rights',
    `FROM ${registry!.host}/base/busybox:1\nRUN echo x > /x\n`,
    `mkdir -p /home/someone && echo x > /home/someone/f && chown -R 1000:1000 /home/someone && ` +
      `/usr/bin/setpriv --bounding-set=-all --inh-caps=-all -- /stowage/bin/stowage executor --context /workspace --destination ${dest} --isolation=none; echo "rc=$?"`,
  );
  t.diagnostic(r.stderr.trim());
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /rc=1\n/, r.stdout);
  const errors = r.stderr.split('\n').filter((l) => /^stowage[^:]*: error/.test(l));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, /cannot empty the build root: removing \/home\/someone\/f failed/, r.stderr);
  assert.match(r.stderr, /CAP_DAC_OVERRIDE and CAP_FOWNER/, r.stderr);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, r.stderr);
  assert.notEqual((await runCommand('skopeo', ['inspect', '--tls-verify=false', `docker://${dest}`])).code, 0, 'nothing pushed');
});

test('--isolation=none: a base layer that whites out /stowage and /workspace at the top level cannot delete the executor or the context', async (t) => {
  // Built on the host (bubblewrap): layer 2 deletes what layer 1 made, so it carries top-level
  // `.wh.stowage` and `.wh.workspace` entries — the paths the executor container must keep.
  const baseCtx = join(work, 'whiteout-base');
  mkdirSync(baseCtx);
  writeFileSync(
    join(baseCtx, 'Dockerfile'),
    `FROM ${registry!.host}/base/busybox:1\nRUN mkdir -p /stowage/dist /workspace/sub && echo x > /stowage/dist/x\nRUN rm -rf /stowage /workspace\n`,
  );
  const base = `${registry!.host}/base/whiteouts:1`;
  await mustRun(image.stowage, ['executor', '--context', baseCtx, '--destination', base, '--verbosity=warn'], { env: image.env });
  const dest = `${registry!.host}/e2e/app:none-whiteouts`;
  const r = await runIsolationNone('none-whiteouts', `FROM ${base}\nRUN echo ok > /ok.txt\n`, dest);
  t.diagnostic(r.stderr.trim());
  assert.equal(r.code, 0, r.stderr);
  const rootfs = await unpackPushed(dest, 'none-whiteouts');
  assert.equal(readFileSync(join(rootfs, 'ok.txt'), 'utf8'), 'ok\n');
  assert.ok(!existsSync(join(rootfs, 'stowage')) && !existsSync(join(rootfs, 'workspace')));
});
