/**
 * --isolation=none's build root (Kaniko's model), always against a TEMP DIRECTORY as the build root:
 * never this machine's `/` (which has /.dockerenv, so the container check alone would let it pass).
 * RUN steps here run the host's /bin/sh with cwd inside the temp root and write only relative paths.
 * The real `/` case is the docker e2e (test/e2e/unprivileged.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { buildIgnoreList, holdsIgnored, isIgnored, parseMountInfo } from '../../src/engine/build-root/ignore-list.js';
import { assertBuildRootAllowed, installDir, probeContainer, realOrSelf } from '../../src/engine/build-root/guard.js';
import { wipeRoot } from '../../src/engine/build-root/wipe.js';
import { BuildRoot } from '../../src/engine/build-root/build-root.js';
import { buildDockerfile, createEnginePorts } from '../../src/engine/build-image.js';
import { unpackLayer } from '../../src/engine/unpack.js';
import { END_OF_ARCHIVE, encodeHeader, padding, type TarHeader } from '../../src/engine/layer/tar-format.js';
import { sha256Digest } from '../../src/image/digest.js';
import type { Layer } from '../../src/image/blob.js';
import { hostPlatform } from '../../src/image/platform.js';
import { StowageError } from '../../src/util/errors.js';
import { busyboxLayout, localImages } from '../helpers/busybox-image.js';
import { fixture, unpackWithUmoci } from './build-helpers.js';

/** A temp build root; refuses to hand out anything that resolves to `/`. */
function tempRoot(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  assert.notEqual(resolve(dir), '/');
  return dir;
}

interface E extends Partial<TarHeader> {
  name: string;
  body?: string;
}

function tar(entries: E[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const typeflag = e.typeflag ?? '0';
    parts.push(
      encodeHeader({ typeflag, mode: typeflag === '5' ? 0o755 : 0o644, uid: 0, gid: 0, size: typeflag === '0' ? body.length : 0, mtimeNs: 1_600_000_000_123_456_789n, linkname: '', devMajor: 0, devMinor: 0, xattrs: {}, ...e }),
    );
    if (typeflag === '0' && body.length > 0) parts.push(body, Buffer.alloc(padding(body.length)));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

function layerOf(bytes: Buffer): Layer {
  const digest = sha256Digest(bytes);
  return { descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: bytes.length }, diffId: digest, open: async () => Readable.from([bytes]) };
}

test('ignore list: mount points from mountinfo (escapes decoded), host paths only below the root, in-root paths as given', () => {
  const mountinfo = [
    '22 1 0:21 / / rw,relatime - overlay overlay rw',
    '23 22 0:22 / /proc rw,nosuid - proc proc rw',
    '30 22 8:1 /vol /work\\040space ro - ext4 /dev/sda1 rw',
    '31 22 8:1 /x /etc/resolv.conf rw - ext4 /dev/sda1 rw',
  ].join('\n');
  const mounts = parseMountInfo(mountinfo);
  assert.deepEqual(mounts, ['/', '/proc', '/work space', '/etc/resolv.conf']);
  const inRoot = buildIgnoreList({ root: '/', mountPoints: mounts, protect: ['/stowage'], ignorePaths: ['/data/keep/'] });
  for (const p of ['proc', 'work space', 'etc/resolv.conf', 'stowage', 'data/keep', 'sys', 'dev', 'var/run', 'etc/mtab']) assert.ok(inRoot.includes(p), p);
  assert.ok(!inRoot.includes(''), 'the root itself is never ignored');
  // A temp build root: host mounts elsewhere do not matter, protected paths below it do.
  const tmp = buildIgnoreList({ root: '/tmp/r', mountPoints: ['/', '/proc', '/tmp/r/mnt'], protect: ['/tmp/r/cache/x', '/elsewhere'], ignorePaths: ['/keep'] });
  assert.ok(tmp.includes('mnt') && tmp.includes('cache/x') && tmp.includes('keep') && tmp.includes('proc'));
  assert.ok(!tmp.some((p) => p.startsWith('tmp/') || p === 'elsewhere'), tmp.join(','));
  const set = new Set(['a/b']);
  assert.equal(isIgnored('a/b/c', set), true);
  assert.equal(isIgnored('a', set), false);
  assert.equal(holdsIgnored('a', set), true);
  assert.equal(holdsIgnored('a/b', set), false);
});

test('the safety gate: / is refused outside a container unless --force, and the error says it would delete the host\'s files', () => {
  assert.throws(
    () => assertBuildRootAllowed({ root: '/', force: false, container: {} }),
    (e: unknown) => e instanceof StowageError && e.code === 'engine/isolation-none-outside-container' && /delete the host's files/.test(e.message) && /--force/.test(e.hint ?? ''),
  );
  assertBuildRootAllowed({ root: '/', force: true, container: {} });
  assertBuildRootAllowed({ root: '/', force: false, container: { evidence: '/.dockerenv exists' } });
  assertBuildRootAllowed({ root: '/tmp/some-root', force: false, container: {} });
  const fake = tempRoot('stowage-fake-root-');
  try {
    assert.equal(probeContainer({ root: fake }).evidence, undefined);
    mkdirSync(join(fake, 'run'));
    writeFileSync(join(fake, 'run/.containerenv'), '');
    assert.match(probeContainer({ root: fake }).evidence ?? '', /containerenv/);
  } finally {
    rmSync(fake, { recursive: true, force: true });
  }
  assert.ok(existsSync(join(installDir(), 'package.json')), 'the install dir is the package root');
});

test('wipeRoot deletes everything but the ignored paths, keeping the directories that lead to them', async () => {
  const root = tempRoot('stowage-wipe-');
  try {
    mkdirSync(join(root, 'usr/lib/stowage/dist'), { recursive: true });
    writeFileSync(join(root, 'usr/lib/stowage/dist/main.js'), 'kept');
    writeFileSync(join(root, 'usr/lib/libc.so'), 'gone');
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc/passwd'), 'gone');
    writeFileSync(join(root, 'etc/hosts'), 'kept');
    symlinkSync('/usr/lib/stowage', join(root, 'link-to-kept'));
    mkdirSync(join(root, 'var/cache/big/deep'), { recursive: true });
    writeFileSync(join(root, 'var/cache/big/deep/f'), 'gone');
    await wipeRoot(root, new Set(['usr/lib/stowage', 'etc/hosts']), AbortSignal.timeout(10_000));
    assert.deepEqual(readdirSync(root).sort(), ['etc', 'usr']);
    assert.deepEqual(readdirSync(join(root, 'usr/lib')), ['stowage']);
    assert.equal(readFileSync(join(root, 'usr/lib/stowage/dist/main.js'), 'utf8'), 'kept');
    assert.deepEqual(readdirSync(join(root, 'etc')), ['hosts']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a protected path or --ignore-path reached through symlinks survives emptying the root under its given name and its real one (also an output not written yet)', async () => {
  const root = tempRoot('stowage-wipe-links-');
  try {
    mkdirSync(join(root, 'mnt/vol/out'), { recursive: true });
    mkdirSync(join(root, 'mnt/vol/ws/app'), { recursive: true });
    writeFileSync(join(root, 'mnt/vol/ws/app/Dockerfile'), 'FROM scratch\n');
    symlinkSync(join(root, 'mnt/vol/out'), join(root, 'out')); // a host path: protected paths are host paths
    symlinkSync(join(root, 'mnt/vol/ws'), join(root, 'workspace'));
    mkdirSync(join(root, 'data2/keepme'), { recursive: true });
    writeFileSync(join(root, 'data2/keepme/f'), 'keep');
    mkdirSync(join(root, 'opt'));
    symlinkSync('../data2', join(root, 'opt/link')); // --ignore-path names it as steps see it: /opt/link/keepme
    writeFileSync(join(root, 'gone.txt'), 'gone');
    // As createBuildRootFor gives them: each protected path under its given and its real name.
    const protect = [join(root, 'out/image.tar'), join(root, 'workspace/app')].flatMap((p) => [p, realOrSelf(p)]);
    assert.ok(protect.includes(join(root, 'mnt/vol/out/image.tar')), 'a file not written yet resolves through its existing parent');
    const ignore = new Set(buildIgnoreList({ root, mountPoints: [], protect, ignorePaths: ['/opt/link/keepme'] }));
    await wipeRoot(root, ignore, AbortSignal.timeout(10_000));
    assert.ok(!existsSync(join(root, 'gone.txt')));
    assert.equal(readFileSync(join(root, 'workspace/app/Dockerfile'), 'utf8'), 'FROM scratch\n', 'the context, under its given name');
    assert.ok(lstatSync(join(root, 'out')).isSymbolicLink() && existsSync(join(root, 'mnt/vol/out')), 'the output directory, under both names');
    assert.equal(readFileSync(join(root, 'opt/link/keepme/f'), 'utf8'), 'keep', '--ignore-path through a symlink');
    // A layer can neither replace those symlinks nor write through them.
    await unpackLayer(
      [tar([{ name: 'workspace', typeflag: '5' }, { name: 'out', typeflag: '2', linkname: '/etc' }, { name: 'opt/link', typeflag: '5' }, { name: 'data2/keepme/f', body: 'layer' }])],
      root,
      { asRoot: process.getuid?.() === 0, whiteouts: 'apply', ignore, subprocesses: false },
    );
    assert.ok(lstatSync(join(root, 'workspace')).isSymbolicLink() && lstatSync(join(root, 'out')).isSymbolicLink() && lstatSync(join(root, 'opt/link')).isSymbolicLink());
    assert.equal(readFileSync(join(root, 'data2/keepme/f'), 'utf8'), 'keep');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('unpacking into the build root never writes, deletes or reaches through a symlink into an ignored path; spawns no helper', async () => {
  const root = tempRoot('stowage-unpack-ignore-');
  try {
    mkdirSync(join(root, 'keep'));
    writeFileSync(join(root, 'keep/state'), 'precious');
    mkdirSync(join(root, 'opq/keep2'), { recursive: true });
    writeFileSync(join(root, 'opq/keep2/x'), 'precious');
    writeFileSync(join(root, 'opq/other'), 'goes');
    const ignore = new Set(['keep', 'opq/keep2']);
    const r = await unpackLayer(
      [tar([
        { name: 'keep/state', body: 'overwritten' },
        { name: 'keep/new', body: 'new' },
        { name: '.wh.keep', typeflag: '0' },
        { name: 'opq/.wh..wh..opq' },
        { name: 'opq/fresh', body: 'fresh' },
        { name: 'sneaky', typeflag: '2', linkname: '/keep' },
        { name: 'sneaky/evil', body: 'evil' },
        { name: 'sneaky/newdir/evil', body: 'evil' },
        { name: 'opq', typeflag: '2', linkname: '/elsewhere' },
        { name: 'ok/file', body: 'ok' },
        { name: 'ok/hard', typeflag: '1', linkname: 'keep/state' },
        { name: 'fifo', typeflag: '6' },
      ])],
      root,
      { asRoot: process.getuid?.() === 0, whiteouts: 'apply', ignore, subprocesses: false },
    );
    assert.equal(readFileSync(join(root, 'keep/state'), 'utf8'), 'precious');
    assert.deepEqual(readdirSync(join(root, 'keep')), ['state']);
    assert.equal(readFileSync(join(root, 'opq/keep2/x'), 'utf8'), 'precious');
    assert.ok(!existsSync(join(root, 'opq/other')), 'the opaque marker emptied the directory around the ignored path');
    assert.equal(readFileSync(join(root, 'opq/fresh'), 'utf8'), 'fresh');
    assert.ok(lstatSync(join(root, 'opq')).isDirectory(), 'a directory that holds an ignored path is never replaced by a symlink');
    assert.equal(readFileSync(join(root, 'ok/file'), 'utf8'), 'ok');
    assert.ok(!existsSync(join(root, 'ok/hard')), 'no hardlink to an ignored file');
    assert.ok(!existsSync(join(root, 'fifo')), 'no mknod without subprocesses');
    assert.ok(r.warnings.some((w) => /fifo/.test(w)), r.warnings.join('\n'));
    // mtimes through Node: microseconds survive.
    assert.equal(lstatSync(join(root, 'ok/file'), { bigint: true }).mtimeNs / 1000n, 1_600_000_000_123_456n);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('one stage at a time: a second claim on the build root is refused while the first holds it', async () => {
  const root = tempRoot('stowage-busy-');
  const scratch = tempRoot('stowage-busy-scratch-');
  try {
    const br = new BuildRoot({ root, ignore: [], scratchDir: scratch });
    const layer = layerOf(tar([{ name: 'a', body: 'a' }]));
    const signal = AbortSignal.timeout(10_000);
    const first = await br.prepareFromLayers({ layers: [layer], signal });
    await assert.rejects(br.prepareFromLayers({ layers: [layer], signal }), (e: unknown) => e instanceof StowageError && e.code === 'engine/build-root-busy');
    writeFileSync(join(root, 'b'), 'b');
    const changes = (await first.snapshot({ signal })) as { entries: Array<{ path: string }> };
    assert.deepEqual(changes.entries.map((e) => e.path), ['b']);
    await first.release();
    const second = await br.prepareFromLayers({ layers: [layer], signal });
    assert.deepEqual(readdirSync(root), ['a'], 'prepared again: emptied, then the layer');
    await second.release();
    await assert.rejects(first.snapshot({ signal }), (e: unknown) => e instanceof StowageError && e.code === 'engine/build-root-released');
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('a multi-stage build in a temp build root: each stage starts from its own base, COPY --from sees the earlier stage, leftovers and ignored paths stay out', async () => {
  const fx = fixture({
    Dockerfile: [
      'FROM busybox AS first',
      'WORKDIR /work',
      // Relative paths only: this /bin/sh is the host's, running with cwd in the temp root.
      'RUN echo one > made-by-run.txt && mkdir -p sub && echo two > sub/deeper.txt',
      'COPY a.txt /copied/a.txt',
      'FROM busybox',
      'COPY --from=first /work/made-by-run.txt /from-first.txt',
      'COPY --from=first /copied/a.txt /a-again.txt',
      'ENV STAGE=two',
      'WORKDIR /w2',
      'RUN echo "$STAGE" > stage.txt',
      '',
    ].join('\n'),
    'a.txt': 'from the context\n',
  });
  const root = tempRoot('stowage-buildroot-');
  const signal = AbortSignal.timeout(60_000);
  try {
    writeFileSync(join(root, 'leftover.txt'), 'from before the build');
    mkdirSync(join(root, 'keep'));
    writeFileSync(join(root, 'keep/state.txt'), 'kept');
    const setup = await createEnginePorts({
      cacheDir: join(fx.root, 'cache'),
      snapshotter: 'walk',
      isolation: 'none',
      isolationNone: { buildRoot: root, force: false, ignorePaths: ['/keep'], protect: [] },
      images: {
        async resolve(ref, platform, sig) {
          const bb = await busyboxLayout();
          return localImages({ busybox: { dir: bb.dir, tag: bb.tag } }).resolve(ref, platform, sig);
        },
      },
      signal,
    });
    const { isolation } = await setup.probe();
    assert.equal(isolation.isolation, 'none');
    assert.match(isolation.reason, /emptied and refilled for each stage/);
    let image;
    try {
      image = await buildDockerfile({ dockerfilePath: join(fx.context, 'Dockerfile'), contextDir: fx.context, buildArgs: {}, platform: hostPlatform(), ports: setup.engine, options: { cacheDir: join(fx.root, 'cache'), signal, sourceDateEpoch: 0 } });
    } finally {
      await setup.close();
    }
    const rootfs = await unpackWithUmoci(fx, image);
    assert.equal(readFileSync(join(rootfs, 'from-first.txt'), 'utf8'), 'one\n');
    assert.equal(readFileSync(join(rootfs, 'a-again.txt'), 'utf8'), 'from the context\n');
    assert.equal(readFileSync(join(rootfs, 'w2/stage.txt'), 'utf8'), 'two\n');
    assert.ok(existsSync(join(rootfs, 'bin/busybox')), 'the base is in the image');
    for (const absent of ['work', 'copied', 'leftover.txt', 'keep']) assert.ok(!existsSync(join(rootfs, absent)), `${absent} is not in the final image`);
    // The build root holds the last stage (as Kaniko leaves /), the ignored path untouched, the leftover gone.
    assert.equal(readFileSync(join(root, 'w2/stage.txt'), 'utf8'), 'two\n');
    assert.equal(readFileSync(join(root, 'keep/state.txt'), 'utf8'), 'kept');
    assert.ok(!existsSync(join(root, 'leftover.txt')));
    assert.ok(!existsSync(join(root, 'work')), 'the first stage was wiped before the second');
    // The trees extracted for COPY --from are gone after the build.
    assert.deepEqual(readdirSync(join(fx.root, 'cache', 'build-root-trees')), []);
  } finally {
    rmSync(root, { recursive: true, force: true });
    fx.cleanup();
  }
});

test('stowage executor: --force and --ignore-path parse (absolute only), and the executor keeps its context, Dockerfile, outputs and credentials', async () => {
  const { parseExecutorArgs, isolationNoneOptions, executorUsage } = await import('../../src/cli/executor.js');
  const { options } = parseExecutorArgs([
    '--isolation=none', '--force', '--ignore-path', '/data', '--ignore-path=/var/lib/keep',
    '--destination', 'oci:/out/layout:v1', '--destination', 'registry.example.com/a/b:1', '--tar-path', '/out/image.tar', '--digest-file', '/out/digest',
  ]);
  assert.equal(options.force, true);
  assert.deepEqual(options.ignorePaths, ['/data', '/var/lib/keep']);
  assert.throws(() => parseExecutorArgs(['--ignore-path', 'relative/path']), /must be an absolute path/);
  const none = isolationNoneOptions(options, { contextDir: '/workspace', dockerfilePath: '/workspace/Dockerfile', env: { DOCKER_CONFIG: '/stowage/.docker' } });
  assert.equal(none.buildRoot, '/');
  assert.equal(none.force, true);
  assert.deepEqual(none.ignorePaths, ['/data', '/var/lib/keep']);
  assert.deepEqual([...none.protect].sort(), ['/out/digest', '/out/image.tar', '/out/layout', '/stowage/.docker', '/workspace', '/workspace/Dockerfile']);
  // The credentials dir kept is the one the registry client reads after the wipe, HOME unset or DOCKER_CONFIG empty too.
  const { dockerConfigPath } = await import('../../src/registry/auth.js');
  const { homedir } = await import('node:os');
  for (const env of [{}, { DOCKER_CONFIG: '' }, { HOME: '/home/ci', DOCKER_CONFIG: '' }]) {
    const kept = isolationNoneOptions(options, { contextDir: '/workspace', dockerfilePath: '/workspace/Dockerfile', env }).protect;
    const expected = 'HOME' in env ? '/home/ci/.docker' : `${homedir()}/.docker`;
    assert.ok(kept.includes(expected), `${JSON.stringify(env)}: ${JSON.stringify(kept)}`);
    assert.equal(dockerConfigPath(env), `${expected}/config.json`);
  }
  const help = executorUsage();
  assert.match(help, /--ignore-path/);
  assert.match(help, /--force\n.*deletes the files of the machine/);
  assert.match(help, /none is Kaniko's model.*consumed/s);
});

test('with the step cache: a step that runs after cache hits gets a build root refilled from the base plus the restored layers', async () => {
  const fx = fixture({
    Dockerfile: ['FROM busybox', 'WORKDIR /w', 'RUN echo a > a.txt', 'COPY b.txt /w/b.txt', 'RUN cat a.txt b.txt > c.txt', ''].join('\n'),
    'b.txt': 'first\n',
  });
  const root = tempRoot('stowage-buildroot-cache-');
  const cacheDir = join(fx.root, 'cache');
  const signal = AbortSignal.timeout(60_000);
  const buildOnce = async (events: string[]) => {
    const setup = await createEnginePorts({
      cacheDir,
      snapshotter: 'walk',
      isolation: 'none',
      isolationNone: { buildRoot: root, force: false, ignorePaths: [], protect: [] },
      images: {
        async resolve(ref, platform, sig) {
          const bb = await busyboxLayout();
          return localImages({ busybox: { dir: bb.dir, tag: bb.tag } }).resolve(ref, platform, sig);
        },
      },
      signal,
    });
    const stepCache = setup.createStepCache({ warn: (m) => assert.fail(m) });
    try {
      return await buildDockerfile({
        dockerfilePath: join(fx.context, 'Dockerfile'),
        contextDir: fx.context,
        buildArgs: {},
        platform: hostPlatform(),
        ports: setup.engine,
        options: { cacheDir, signal, sourceDateEpoch: 0, stepCache, onEvent: (e) => void (e.type === 'cache-hit' && events.push(`hit:${e.line}`)) },
      });
    } finally {
      await stepCache.flush();
      await setup.close();
    }
  };
  try {
    await buildOnce([]);
    writeFileSync(join(fx.context, 'b.txt'), 'second\n');
    writeFileSync(join(root, 'stray.txt'), 'the root is emptied again');
    const events: string[] = [];
    const image = await buildOnce(events);
    assert.deepEqual(events, ['hit:2', 'hit:3'], 'WORKDIR and the first RUN came from the cache');
    const rootfs = await unpackWithUmoci(fx, image);
    assert.equal(readFileSync(join(rootfs, 'w/c.txt'), 'utf8'), 'a\nsecond\n', 'the RUN after the hits saw the restored a.txt');
    assert.ok(!existsSync(join(root, 'stray.txt')));
  } finally {
    rmSync(root, { recursive: true, force: true });
    fx.cleanup();
  }
});

test('FROM the stage that just finished continues in the build root as it was left (no emptying, no unpacking), as BuildKit continues from its snapshot', async () => {
  const fx = fixture({
    Dockerfile: [
      'FROM busybox AS a',
      'WORKDIR /w',
      'RUN echo a > a.txt',
      'FROM a',
      // Re-unpacked, a.txt would carry the layer's mtime, clamped to SOURCE_DATE_EPOCH=0.
      'RUN stat -c %Y a.txt > mtime.txt && cat a.txt > b.txt',
      '',
    ].join('\n'),
  });
  const root = tempRoot('stowage-buildroot-parked-');
  const signal = AbortSignal.timeout(60_000);
  try {
    const setup = await createEnginePorts({
      cacheDir: join(fx.root, 'cache'),
      snapshotter: 'walk',
      isolation: 'none',
      isolationNone: { buildRoot: root, force: false, ignorePaths: [], protect: [] },
      images: {
        async resolve(ref, platform, sig) {
          const bb = await busyboxLayout();
          return localImages({ busybox: { dir: bb.dir, tag: bb.tag } }).resolve(ref, platform, sig);
        },
      },
      signal,
    });
    let image;
    try {
      image = await buildDockerfile({ dockerfilePath: join(fx.context, 'Dockerfile'), contextDir: fx.context, buildArgs: {}, platform: hostPlatform(), ports: setup.engine, options: { cacheDir: join(fx.root, 'cache'), signal, sourceDateEpoch: 0 } });
    } finally {
      await setup.close();
    }
    const rootfs = await unpackWithUmoci(fx, image);
    assert.equal(readFileSync(join(rootfs, 'w/b.txt'), 'utf8'), 'a\n');
    assert.notEqual(readFileSync(join(rootfs, 'w/mtime.txt'), 'utf8').trim(), '0', 'a.txt was the one stage a wrote, not re-unpacked');
    // The second stage's RUN layer holds only what that RUN changed: not a.txt again.
    assert.equal(image.layers.length, (await busyboxLayout()).image.layers.length + 3, 'base + WORKDIR + 2 RUN layers');
    const last = join(fx.root, 'last-layer');
    mkdirSync(last);
    await unpackLayer(await image.layers[image.layers.length - 1]!.open(signal), last, { asRoot: false, whiteouts: 'record' });
    assert.deepEqual(readdirSync(join(last, 'w')).sort(), ['b.txt', 'mtime.txt']);
  } finally {
    rmSync(root, { recursive: true, force: true });
    fx.cleanup();
  }
});
