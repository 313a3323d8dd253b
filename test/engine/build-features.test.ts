import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build, fixture, layerPaths, unpackWithUmoci, type BuildFixture } from './build-helpers.js';
import { SINGLE_SNAPSHOT_HISTORY } from '../../src/engine/stage-runner.js';
import type { BuildEvent } from '../../src/engine/instructions/types.js';
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

test('ONBUILD triggers run right after FROM in the child, with its env, and are cleared (A20)', async () => {
  const f = fx({
    Dockerfile: `FROM busybox AS parent
ONBUILD ENV FROM_TRIGGER=yes
ONBUILD RUN echo "triggered $FROM_TRIGGER" > /onbuild.txt

FROM parent AS child
RUN cat /onbuild.txt > /seen.txt

FROM child
RUN test ! -e /twice || exit 9; touch /twice
`,
  });
  const parent = await build(f, { target: 'parent' });
  assert.deepEqual(parent.config.config!.OnBuild, ['ENV FROM_TRIGGER=yes', 'RUN echo "triggered $FROM_TRIGGER" > /onbuild.txt']);
  assert.ok(!parent.config.history!.some((h) => h.created_by?.includes('ONBUILD')), 'ONBUILD writes no history');
  const image = await build(f);
  assert.equal(image.config.config!.OnBuild, undefined, 'inherited triggers are cleared');
  assert.ok(image.config.config!.Env!.includes('FROM_TRIGGER=yes'));
  const rootfs = await unpackWithUmoci(f, image);
  assert.equal(readFileSync(join(rootfs, 'seen.txt'), 'utf8'), 'triggered yes\n');
});

test('ARGs of a base stage stay in scope in the stage built FROM it (A7); a stage used twice is built once', async () => {
  const f = fx({
    Dockerfile: `FROM busybox AS base
ARG V=from-base
RUN echo base-ran >> /base.log

FROM base AS one
RUN echo "$V" > /v.txt

FROM scratch
COPY --from=base /base.log /a.log
COPY --from=one /v.txt /v.txt
COPY --from=one /base.log /b.log
`,
  });
  const events: BuildEvent[] = [];
  const image = await build(f, { onEvent: (e) => events.push(e) });
  const starts = events.filter((e) => e.type === 'stage-start').map((e) => (e as { stage: number }).stage);
  assert.deepEqual(starts, [0, 1, 2], 'each stage built once, dependencies first');
  const rootfs = await unpackWithUmoci(f, image);
  assert.equal(readFileSync(join(rootfs, 'v.txt'), 'utf8'), 'from-base\n');
  assert.equal(readFileSync(join(rootfs, 'a.log'), 'utf8'), 'base-ran\n');
  assert.equal(readFileSync(join(rootfs, 'b.log'), 'utf8'), 'base-ran\n');
});

test('COPY --from a stage whose last writing step made no snapshot (WORKDIR /) sees its whole tree', async () => {
  // Under overlay, the RUN's snapshot remounts the rootfs in the background for a next step; the
  // stage must wait for that remount before a reader copies from its path (a race this scenario
  // rarely loses; snapshot.test.ts checks settle itself).
  const f = fx({
    Dockerfile: `FROM busybox AS a
RUN mkdir -p /out && echo one > /out/one && echo two > /out/two
WORKDIR /

FROM scratch
COPY --from=a /out /out
COPY --from=a /bin/busybox /busybox
`,
  });
  const image = await build(f);
  const rootfs = await unpackWithUmoci(f, image);
  assert.equal(readFileSync(join(rootfs, 'out/one'), 'utf8'), 'one\n');
  assert.equal(readFileSync(join(rootfs, 'out/two'), 'utf8'), 'two\n');
  assert.ok(statSync(join(rootfs, 'busybox')).size > 100_000, 'the base layers are visible too');
});

test('RUN heredocs (script and shell forms), secret, cache and tmpfs mounts leave nothing behind', async () => {
  const f = fx({
    Dockerfile: `FROM busybox
RUN <<EOF
echo heredoc > /hd.txt
EOF
RUN <<EOF
#!/bin/sh
echo "script $0" > /script.txt
EOF
RUN --mount=type=secret,id=tok,required=true wc -c < /run/secrets/tok > /secret-len
RUN --mount=type=secret,id=tok,env=TOKEN printf %s "$TOKEN" | wc -c > /secret-env
RUN --mount=type=cache,target=/var/cache/app echo x >> /var/cache/app/log && wc -l < /var/cache/app/log > /cache-count
RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && test -f /scratch/t
`,
  });
  const secrets = async (id: string) => (id === 'tok' ? Buffer.from('s3cr3t') : undefined);
  await build(f, { secrets });
  const image = await build(f, { secrets });
  const rootfs = await unpackWithUmoci(f, image);
  assert.equal(readFileSync(join(rootfs, 'hd.txt'), 'utf8'), 'heredoc\n');
  assert.match(readFileSync(join(rootfs, 'script.txt'), 'utf8'), /^script \/dev\/pipes\/EOF\n$/);
  assert.equal(readFileSync(join(rootfs, 'secret-len'), 'utf8').trim(), '6');
  assert.equal(readFileSync(join(rootfs, 'secret-env'), 'utf8').trim(), '6', 'env= exposes the secret to the step');
  assert.equal(readFileSync(join(rootfs, 'cache-count'), 'utf8').trim(), '2', 'the cache mount persisted across builds');
  assert.ok(!existsSync(join(rootfs, 'run/secrets/tok')), 'the secret never lands in a layer');
  assert.ok(!existsSync(join(rootfs, 'var/cache/app/log')), 'cache contents never land in a layer');
  assert.ok(!existsSync(join(rootfs, 'scratch/t')));
  assert.ok(!existsSync(join(rootfs, 'dev/pipes')));
  assert.ok(!image.config.config!.Env!.some((e) => e.includes('s3cr3t')));
  assert.ok(!JSON.stringify(image.config.history).includes('s3cr3t'));
});

test('COPY --from an external image; WORKDIR creates dirs as USER, relative WORKDIR, existing dir still a layer', async () => {
  const f = fx({
    Dockerfile: `FROM busybox
COPY --from=busybox /bin/busybox /opt/bb
USER app
WORKDIR /srv/data
WORKDIR sub
WORKDIR /tmp
RUN pwd > /tmp/pwd
`,
  });
  const image = await build(f);
  const hist = image.config.history!.slice(-5);
  assert.deepEqual(
    hist.map((h) => [h.created_by, h.empty_layer ?? false]),
    [
      ['USER app', true],
      ['WORKDIR /srv/data', false],
      ['WORKDIR /srv/data/sub', false],
      ['WORKDIR /tmp', false],
      ['RUN /bin/sh -c pwd > /tmp/pwd # buildkit', false],
    ],
  );
  assert.equal(image.config.config!.WorkingDir, '/tmp');
  const rootfs = await unpackWithUmoci(f, image);
  assert.equal(statSync(join(rootfs, 'opt/bb')).size, statSync('/bin/busybox').size);
  assert.equal(statSync(join(rootfs, 'srv/data/sub')).uid, 1000);
  assert.equal(statSync(join(rootfs, 'srv/data')).uid, 1000);
  assert.equal(statSync(join(rootfs, 'srv')).uid, 1000, 'mkdir -p: every created level gets the owner');
  assert.equal(statSync(join(rootfs, 'tmp')).mode & 0o7777, 0o1777, 'an existing directory keeps its mode and owner');
  assert.equal(readFileSync(join(rootfs, 'tmp/pwd'), 'utf8'), '/tmp\n');
});

// The 45 s limit is what fails this test if the step's `sleep 60` were waited for instead of killed.
test('aborting a build stops the running step and releases every rootfs', { timeout: 45_000 }, async () => {
  const f = fx({ Dockerfile: 'FROM busybox\nRUN echo started && sleep 60\n' });
  const ac = new AbortController();
  const p = build(f, {
    signal: ac.signal,
    snapshotter: 'walk',
    onEvent: (e) => {
      if (e.type === 'output') ac.abort(new Error('test abort'));
    },
  });
  await assert.rejects(p);
  // Every other build of this process has finished, so any rootfs work dir left would be this one's.
  const work = join(f.cacheDir, 'work');
  const left = existsSync(work) ? readdirSync(work).filter((n) => !n.startsWith('.')) : [];
  assert.deepEqual(left, [], 'no rootfs work dir left behind');
});

test('RUN --mount=type=bind from a stage and from the context; mount points are not in the layer', async () => {
  const f = fx({
    Dockerfile: `FROM busybox AS tools
RUN echo tool > /tool.txt

FROM busybox
RUN --mount=type=bind,from=tools,source=/tool.txt,target=/mnt/tool.txt cat /mnt/tool.txt > /used.txt
RUN --mount=type=bind,source=ctx.txt,target=/ctx.txt cat /ctx.txt > /ctx-used.txt
`,
    'ctx.txt': 'from context\n',
  });
  const image = await build(f);
  const rootfs = await unpackWithUmoci(f, image);
  assert.equal(readFileSync(join(rootfs, 'used.txt'), 'utf8'), 'tool\n');
  assert.equal(readFileSync(join(rootfs, 'ctx-used.txt'), 'utf8'), 'from context\n');
  assert.ok(!existsSync(join(rootfs, 'mnt/tool.txt')));
  assert.ok(!existsSync(join(rootfs, 'ctx.txt')));
});

test('independent stages build concurrently; the first failure is reported and stops the others', { timeout: 45_000 }, async () => {
  const f = fx({
    Dockerfile: `FROM busybox AS slow
RUN echo slow-started && sleep 60

FROM busybox AS broken
RUN echo broken-started && exit 3

FROM scratch
COPY --from=slow /etc/passwd /a
COPY --from=broken /etc/passwd /b
`,
  });
  await assert.rejects(build(f), (e: unknown) => {
    assert.ok(e instanceof StowageError, String(e));
    assert.equal(e.code, 'build/run-failed');
    assert.equal(e.range?.start.line, 5);
    assert.match(e.message, /exit code 3/);
    return true;
  });
});

test('--single-snapshot: one layer per stage holding the whole change, the same under both snapshotters; every step keeps its history', async () => {
  const f = fx({
    'c.txt': 'copied\n',
    Dockerfile: `FROM busybox AS single
RUN mkdir /data && echo one > /data/a && echo two > /data/b && echo tmp > /scratch
RUN --mount=type=cache,id=single-snapshot-test,target=/cachemnt rm /scratch /data/a && echo changed > /data/b && echo kept-in-cache > /cachemnt/y
COPY c.txt /data/c.txt
ENV K=v
WORKDIR /work
CMD ["sh"]

FROM single AS workdir-last
RUN touch /late
WORKDIR /
`,
  });
  const base = await build(f, { target: 'single', sourceDateEpoch: 1_700_000_000 });
  const byMode = await Promise.all((['overlay', 'walk'] as const).map((snapshotter) => build(f, { target: 'single', snapshotter, singleSnapshot: true, sourceDateEpoch: 1_700_000_000 })));
  const [overlay, walk] = byMode as [typeof base, typeof base];
  const busyboxLayers = base.layers.length - 4; // RUN, RUN, COPY, WORKDIR without --single-snapshot
  assert.equal(overlay.layers.length, busyboxLayers + 1, 'one layer on top of the base');
  assert.equal(walk.layers.at(-1)!.diffId, overlay.layers.at(-1)!.diffId, 'both snapshotters write the same layer');
  const paths = await layerPaths(f, overlay, -1);
  assert.deepEqual(paths.filter((p) => p.startsWith('data')).sort(), ['data', 'data/b', 'data/c.txt']);
  assert.ok(paths.includes('work'));
  // `etc`: the directory the sandbox's /etc/hosts and /etc/resolv.conf stubs touched, as in every RUN layer.
  assert.deepEqual(paths.filter((p) => !p.startsWith('data') && p !== 'work'), ['etc']);
  assert.ok(!paths.some((p) => /scratch|cachemnt|\.wh\./.test(p)), `made and deleted in the stage, or a mount: in no layer (${paths.join(' ')})`);
  const history = overlay.config.history!.slice(-6);
  assert.deepEqual(
    history.map((h) => [h.created_by!.replace(/^RUN .*?(rm|mkdir).*$/, 'RUN $1'), h.empty_layer === true]),
    [['RUN mkdir', true], ['RUN rm', true], ['COPY c.txt /data/c.txt # buildkit', true], ['ENV K=v', true], ['WORKDIR /work', false], ['CMD ["sh"]', true]],
  );
  assert.equal(overlay.config.history!.filter((h) => !h.empty_layer).length, overlay.layers.length, 'one non-empty history entry per layer');
  const rootfs = await unpackWithUmoci(f, overlay, 'single');
  assert.equal(readFileSync(join(rootfs, 'data/b'), 'utf8'), 'changed\n');
  assert.equal(readFileSync(join(rootfs, 'data/c.txt'), 'utf8'), 'copied\n');
  assert.ok(!existsSync(join(rootfs, 'data/a')) && !existsSync(join(rootfs, 'scratch')));

  // The last filesystem step (WORKDIR /) takes no snapshot: the deferred RUN is taken after the stage.
  const tail = await build(f, { target: 'workdir-last', singleSnapshot: true, sourceDateEpoch: 1_700_000_000 });
  assert.equal(tail.layers.length, overlay.layers.length + 1);
  assert.deepEqual((await layerPaths(f, tail, -1)).filter((p) => p !== 'etc'), ['late']);
  assert.equal(tail.config.history!.at(-1)!.created_by, SINGLE_SNAPSHOT_HISTORY);
  assert.equal(tail.config.history!.at(-1)!.empty_layer, undefined);
});


test('RUN --mount=type=bind from the context shows what .dockerignore keeps, as BuildKit sends it; an excluded source is an error', async () => {
  const f = fx({
    '.dockerignore': '.env\nlogs\n!logs/keep.log\nnode_modules\n',
    '.env': 'TOKEN=do-not-leak\n',
    'app.txt': 'app\n',
    'logs/keep.log': 'kept\n',
    'logs/drop.log': 'dropped\n',
    'node_modules/x/index.js': 'x\n',
    'src/main.txt': 'main\n',
    Dockerfile: `FROM busybox AS ok
RUN --mount=type=bind,target=/ctx cd /ctx && find . | sort > /listing && cat app.txt src/main.txt > /read
RUN --mount=type=bind,source=src,target=/s,rw ls /s > /src-listing && echo scribble > /s/new
RUN --mount=type=bind,source=logs,target=/l ls /l > /logs-listing

FROM busybox AS excluded
RUN --mount=type=bind,source=.env,target=/e cat /e
`,
  });
  const image = await build(f, { target: 'ok' });
  const rootfs = await unpackWithUmoci(f, image, 'bind-view');
  const listing = readFileSync(join(rootfs, 'listing'), 'utf8').trim().split('\n');
  assert.deepEqual(listing, ['.', './.dockerignore', './Dockerfile', './app.txt', './logs', './logs/keep.log', './src', './src/main.txt']);
  assert.equal(readFileSync(join(rootfs, 'read'), 'utf8'), 'app\nmain\n');
  assert.equal(readFileSync(join(rootfs, 'src-listing'), 'utf8'), 'main.txt\n');
  assert.equal(readFileSync(join(rootfs, 'logs-listing'), 'utf8'), 'keep.log\n');
  assert.ok(!existsSync(join(f.context, 'src', 'new')), 'an rw bind writes a copy, never the context');
  assert.equal(readFileSync(join(f.context, '.env'), 'utf8'), 'TOKEN=do-not-leak\n');
  await assert.rejects(build(f, { target: 'excluded' }), (e: unknown) => {
    assert.ok(e instanceof StowageError, String(e));
    assert.match(e.message, /\.env is excluded by \.dockerignore/);
    assert.equal(e.file, join(f.context, 'Dockerfile'));
    return true;
  });
  assert.deepEqual(readdirSync(join(f.cacheDir, 'run-tmp')).filter((n) => n.startsWith('view-')), [], 'filtered views are removed after their step');
});
