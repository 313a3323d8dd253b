import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, statSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, fixture, unpackWithUmoci, type BuildFixture } from './build-helpers.js';
import { writeDestinations } from '../../src/engine/build-image.js';
import { StowageError } from '../../src/util/errors.js';

const fixtures: BuildFixture[] = [];
function fx(files: Record<string, string>): BuildFixture {
  const f = fixture(files);
  fixtures.push(f);
  return f;
}
after(() => {
  for (const f of fixtures) f.cleanup();
});

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const CREATED = '2026-01-02T03:04:05Z';

test('a metadata-only Dockerfile gives BuildKit config and history (A23)', async () => {
  const f = fx({
    Dockerfile: `FROM scratch
ENV A=1 B="two words"
LABEL org.example.k=v
ARG V=3
USER app
WORKDIR /
EXPOSE 80 53/udp
CMD ["run", "--x"]
ENTRYPOINT ["/bin/app"]
STOPSIGNAL SIGTERM
VOLUME /data
SHELL ["/bin/bash", "-c"]
MAINTAINER someone
`,
  });
  const image = await build(f);
  const c = image.config;
  assert.deepEqual(c.config, {
    Env: [PATH, 'A=1', 'B=two words'],
    Labels: { 'org.example.k': 'v' },
    User: 'app',
    WorkingDir: '/',
    ExposedPorts: { '53/udp': {}, '80/tcp': {} },
    Cmd: ['run', '--x'],
    ArgsEscaped: true,
    Entrypoint: ['/bin/app'],
    StopSignal: 'SIGTERM',
    Volumes: { '/data': {} },
    Shell: ['/bin/bash', '-c'],
  });
  assert.equal(c.author, 'someone');
  assert.equal(c.created, CREATED);
  assert.deepEqual(c.rootfs, { type: 'layers', diff_ids: [] });
  const hist = (by: string) => ({ created: CREATED, created_by: by, comment: 'buildkit.dockerfile.v0', empty_layer: true });
  assert.deepEqual(c.history, [
    hist('ENV A=1 B=two words'),
    hist('LABEL org.example.k=v'),
    hist('ARG V=3'),
    hist('USER app'),
    hist('WORKDIR /'),
    hist('EXPOSE [53/udp 80/tcp]'),
    hist('CMD ["run" "--x"]'),
    hist('ENTRYPOINT ["/bin/app"]'),
    hist('STOPSIGNAL SIGTERM'),
    hist('VOLUME [/data]'),
    hist('SHELL [/bin/bash -c]'),
    hist('MAINTAINER someone'),
  ]);
  assert.equal(image.manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(image.manifest.layers.length, 0);
});

test('COPY variants end to end: files, directory contents, WORKDIR-relative dest, --chown, --chmod, heredoc, .dockerignore', async () => {
  const f = fx({
    Dockerfile: `FROM scratch
WORKDIR /app
COPY a.txt .
COPY dir/ /opt/dir/
COPY --chown=1000:50 --chmod=0640 a.txt /owned/a.txt
COPY b*.txt missing-wild* /multi/
ENV NAME=world
COPY <<EOF /etc/greeting
hello \${NAME}
EOF
COPY . /all/
`,
    'a.txt': 'A\n',
    'b1.txt': 'B1\n',
    'b2.txt': 'B2\n',
    'dir/sub/x.txt': 'X\n',
    'dir/y.txt': 'Y\n',
    'secret.key': 'do not ship\n',
    '.dockerignore': 'secret.key\n',
  });
  const image = await build(f);
  // WORKDIR /app, then six COPYs: one layer each.
  assert.equal(image.layers.length, 7);
  assert.equal(image.config.rootfs.diff_ids.length, 7);
  const hist = image.config.history!;
  assert.deepEqual(
    hist.map((h) => [h.created_by, h.empty_layer ?? false]),
    [
      ['WORKDIR /app', false],
      ['COPY a.txt . # buildkit', false],
      ['COPY dir/ /opt/dir/ # buildkit', false],
      ['COPY --chown=1000:50 --chmod=0640 a.txt /owned/a.txt # buildkit', false],
      ['COPY b*.txt missing-wild* /multi/ # buildkit', false],
      ['ENV NAME=world', true],
      ['COPY <<EOF /etc/greeting # buildkit', false],
      ['COPY . /all/ # buildkit', false],
    ],
  );
  const rootfs = await unpackWithUmoci(f, image);
  assert.equal(readFileSync(join(rootfs, 'app/a.txt'), 'utf8'), 'A\n');
  assert.equal(readFileSync(join(rootfs, 'opt/dir/sub/x.txt'), 'utf8'), 'X\n');
  assert.equal(readFileSync(join(rootfs, 'opt/dir/y.txt'), 'utf8'), 'Y\n');
  const owned = statSync(join(rootfs, 'owned/a.txt'));
  assert.equal(owned.uid, 1000);
  assert.equal(owned.gid, 50);
  assert.equal(owned.mode & 0o7777, 0o640);
  assert.equal(statSync(join(rootfs, 'app/a.txt')).uid, 0);
  assert.equal(readFileSync(join(rootfs, 'multi/b1.txt'), 'utf8'), 'B1\n');
  assert.equal(readFileSync(join(rootfs, 'multi/b2.txt'), 'utf8'), 'B2\n');
  assert.equal(readFileSync(join(rootfs, 'etc/greeting'), 'utf8'), 'hello world\n');
  assert.ok(existsSync(join(rootfs, 'all/a.txt')));
  assert.ok(!existsSync(join(rootfs, 'all/secret.key')), '.dockerignore must keep secret.key out of COPY .');
});

test('multi-stage: COPY --from a named and a numbered stage; unreachable stages are not built', async () => {
  const f = fx({
    Dockerfile: `FROM scratch AS first
COPY one.txt /data/one.txt

FROM scratch AS unused
COPY does-not-exist /x

FROM first AS second
COPY two.txt /data/two.txt

FROM scratch
COPY --from=second /data/ /merged/
COPY --from=0 /data/one.txt /from-index.txt
`,
    'one.txt': '1\n',
    'two.txt': '2\n',
  });
  const image = await build(f);
  assert.equal(image.layers.length, 2);
  const rootfs = await unpackWithUmoci(f, image);
  assert.equal(readFileSync(join(rootfs, 'merged/one.txt'), 'utf8'), '1\n');
  assert.equal(readFileSync(join(rootfs, 'merged/two.txt'), 'utf8'), '2\n');
  assert.equal(readFileSync(join(rootfs, 'from-index.txt'), 'utf8'), '1\n');
  // --target builds the named stage, whose image inherits its base stage's layers.
  const second = await build(f, { target: 'second' });
  assert.equal(second.layers.length, 2);
});

test('RUN on busybox: files owned by USER, env/ARG/WORKDIR applied, every RUN a layer', async () => {
  const f = fx({
    Dockerfile: `FROM busybox
ARG GREETING=hi
ENV WHO=env-value
RUN mkdir -p /work && chown app:app /work
USER app
WORKDIR /work/sub
RUN echo "$GREETING $WHO $(id -u):$(id -g) $(pwd) $HOME" > out.txt
RUN true
USER root
RUN ["/bin/sh", "-c", "echo exec-form > /root-made"]
`,
  });
  const image = await build(f, { buildArgs: { GREETING: 'hello' } });
  const base = 2; // the busybox image's two COPY layers
  assert.equal(image.layers.length, base + 5, 'RUN, WORKDIR, RUN, RUN (empty), RUN');
  const hist = image.config.history!.slice(-9).map((h) => h.created_by);
  assert.deepEqual(hist, [
    'ARG GREETING=hello',
    'ENV WHO=env-value',
    'RUN |1 GREETING=hello /bin/sh -c mkdir -p /work && chown app:app /work # buildkit',
    'USER app',
    'WORKDIR /work/sub',
    'RUN |1 GREETING=hello /bin/sh -c echo "$GREETING $WHO $(id -u):$(id -g) $(pwd) $HOME" > out.txt # buildkit',
    'RUN |1 GREETING=hello /bin/sh -c true # buildkit',
    'USER root',
    'RUN |1 GREETING=hello /bin/sh -c echo exec-form > /root-made # buildkit',
  ]);
  const rootfs = await unpackWithUmoci(f, image);
  const out = join(rootfs, 'work/sub/out.txt');
  assert.equal(readFileSync(out, 'utf8'), 'hello env-value 1000:1000 /work/sub /home/app\n');
  assert.equal(statSync(out).uid, 1000);
  assert.equal(statSync(join(rootfs, 'work/sub')).uid, 1000, 'WORKDIR creates the directory owned by USER');
  assert.equal(readFileSync(join(rootfs, 'root-made'), 'utf8'), 'exec-form\n');
  assert.equal(statSync(join(rootfs, 'root-made')).uid, 0);
  // ARGs reach RUN's environment but never the image config (A7).
  assert.ok(!image.config.config!.Env!.some((e) => e.startsWith('GREETING=')));
  assert.ok(lstatSync(join(rootfs, 'bin/sh')).isSymbolicLink());
  assert.equal(readlinkSync(join(rootfs, 'bin/sh')), 'busybox');
});

test('a failing RUN reports file:line, the command, its exit code and output tail, and writes nothing', async () => {
  const f = fx({
    Dockerfile: `FROM busybox
RUN echo fine
RUN echo first-line && echo "to stderr" >&2 && exit 42
RUN echo never
`,
  });
  const layout = join(f.root, 'never-written');
  let err: unknown;
  try {
    const image = await build(f);
    await writeDestinations(image, [`oci:${layout}:x`], { signal: new AbortController().signal });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof StowageError, `expected a StowageError, got ${String(err)}`);
  assert.equal(err.code, 'build/run-failed');
  assert.equal(err.file, join(f.context, 'Dockerfile'));
  assert.equal(err.range?.start.line, 3);
  assert.match(err.message, /echo first-line && echo "to stderr" >&2 && exit 42/);
  assert.match(err.message, /exit code 42/);
  assert.match(err.message, /first-line/);
  assert.match(err.message, /to stderr/);
  assert.ok(!existsSync(layout), 'nothing is written when the build fails');
});

test('reproducible builds: the same input twice gives the same digest, and skopeo/umoci accept the layout', async () => {
  const files = {
    Dockerfile: `FROM busybox
COPY app.txt /app/
RUN echo built > /app/built.txt && touch /app/stamp
LABEL v=1
`,
    'app.txt': 'app\n',
  };
  const f1 = fx(files);
  const f2 = fx(files);
  const a = await build(f1, { sourceDateEpoch: 1_700_000_000, snapshotter: 'walk' });
  const b = await build(f2, { sourceDateEpoch: 1_700_000_000, now: () => new Date() });
  assert.equal(a.digest, b.digest);
  assert.deepEqual(a.config.rootfs.diff_ids, b.config.rootfs.diff_ids);
  assert.equal(a.config.created, '2023-11-14T22:13:20Z');
  const layout = join(f1.root, 'layout');
  await writeDestinations(a, [`oci:${layout}:v1`, `oci:${layout}:v2`], { signal: new AbortController().signal });
  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${layout}:v1`], { encoding: 'utf8' })) as { Digest: string; Layers: string[]; Labels: Record<string, string> };
  assert.equal(inspect.Digest, a.digest);
  assert.equal(inspect.Layers.length, a.layers.length);
  assert.deepEqual(inspect.Labels, { v: '1' });
  const bundle = join(f1.root, 'bundle');
  const r = spawnSync('umoci', ['unpack', '--image', `${layout}:v2`, bundle], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(bundle, 'rootfs/app/built.txt'), 'utf8'), 'built\n');
  assert.equal(statSync(join(bundle, 'rootfs/app/stamp')).mtimeMs, 1_700_000_000_000, 'mtimes clamped to SOURCE_DATE_EPOCH');
});

test('--label is applied last without a history entry; docker-archive is accepted by skopeo', async () => {
  const f = fx({ Dockerfile: 'FROM scratch\nLABEL a=1 b=2\nCOPY x /x\n', x: 'x' });
  const image = await build(f, { labels: { b: 'override', c: '3' } });
  assert.deepEqual(image.config.config!.Labels, { a: '1', b: 'override', c: '3' });
  assert.equal(image.config.history!.length, 2);
  const tar = join(f.root, 'out', 'img.tar');
  mkdirSync(join(f.root, 'out'));
  writeFileSync(join(f.root, 'out', 'keep'), '');
  await writeDestinations(image, [`docker-archive:${tar}:example.com/x:1`], { signal: new AbortController().signal });
  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${tar}`], { encoding: 'utf8' })) as { Layers: string[]; Labels: Record<string, string> };
  assert.equal(inspect.Layers.length, 1);
  assert.equal(inspect.Labels['c'], '3');
});

test('errors point at the Dockerfile line: bad expansion, missing COPY source, unknown USER in RUN', async () => {
  const cases: { dockerfile: string; line: number; message: RegExp }[] = [
    { dockerfile: 'FROM scratch\nENV A=1\nENV B=${A:?x} C=${NOPE:?is_required}\n', line: 3, message: /NOPE|required/ },
    { dockerfile: 'FROM scratch\n\nCOPY not-there.txt /x\n', line: 3, message: /not-there\.txt/ },
    { dockerfile: 'FROM busybox\nUSER ghost\nRUN true\n', line: 3, message: /ghost/ },
  ];
  for (const c of cases) {
    const f = fx({ Dockerfile: c.dockerfile });
    await assert.rejects(build(f), (e: unknown) => {
      assert.ok(e instanceof StowageError, String(e));
      assert.equal(e.file, join(f.context, 'Dockerfile'));
      assert.equal(e.range?.start.line, c.line, `${c.dockerfile}: ${e.message}`);
      assert.match(e.message, c.message);
      return true;
    });
  }
});
