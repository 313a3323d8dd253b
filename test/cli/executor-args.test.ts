import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contextLocation, dockerfileLocation, parseExecutorArgs, repositoryOf, runExecutor, supportedFlagNames } from '../../src/cli/executor.js';
import { StowageError } from '../../src/util/errors.js';

test('Kaniko flags in both --flag=value and --flag value forms, short aliases and repeats', () => {
  const { options, warnings } = parseExecutorArgs(
    [
      '-f', 'build/Dockerfile', '--context=dir:///src', '-d', 'reg.example/a:1', '--destination=oci:/out/x:v1',
      '--build-arg', 'A=1', '--build-arg=B=two=2', '--build-arg', 'FROM_ENV', '--build-arg', 'UNSET_ONE',
      '--target', 'final', '--no-push', '--label', 'k=v', '--label=x=y=z', '--reproducible', '--insecure-registry', 'localhost:5000',
      '--snapshot-mode=redo', '--custom-platform', 'linux/arm64', '--isolation=chroot', '--verbosity', 'debug',
      '--tar-path', '/o/img.tar', '--digest-file=/o/d', '--skip-unused-stages',
    ],
    { FROM_ENV: 'env-value' },
  );
  assert.equal(options.dockerfile, 'build/Dockerfile');
  assert.equal(options.context, 'dir:///src');
  assert.deepEqual(options.destinations, ['reg.example/a:1', 'oci:/out/x:v1']);
  assert.deepEqual(options.buildArgs, { A: '1', B: 'two=2', FROM_ENV: 'env-value' });
  assert.equal(options.target, 'final');
  assert.equal(options.noPush, true);
  assert.deepEqual(options.labels, { k: 'v', x: 'y=z' });
  assert.equal(options.reproducible, true);
  assert.deepEqual(options.insecureRegistries, ['localhost:5000']);
  assert.equal(options.snapshotter, 'walk');
  assert.equal(options.customPlatform, 'linux/arm64');
  assert.equal(options.isolation, 'chroot');
  assert.equal(options.verbosity, 'debug');
  assert.equal(options.tarPath, '/o/img.tar');
  assert.equal(options.digestFile, '/o/d');
  assert.deepEqual(warnings, []);
});

test('bool flags take =true/=false; --cache with --single-snapshot is turned off with a warning', () => {
  const r = parseExecutorArgs(['--no-push=false', '--cache=true', '--cache-repo', 'r/c', '--snapshotter', 'overlay']);
  assert.equal(r.options.noPush, false);
  assert.equal(r.options.cache, true);
  assert.equal(r.options.snapshotter, 'overlay');
  assert.equal(r.options.cacheRepo, 'r/c');
  assert.equal(r.options.singleSnapshot, false);
  assert.deepEqual(r.warnings, []);
  const single = parseExecutorArgs(['--cache=true', '--single-snapshot']);
  assert.equal(single.options.singleSnapshot, true);
  assert.equal(single.options.cache, false, 'a step of a single-snapshot stage has no layer of its own to cache');
  assert.equal(single.warnings.length, 1);
  assert.match(single.warnings[0]!, /--cache is ignored with --single-snapshot/);
  assert.deepEqual(parseExecutorArgs(['--single-snapshot']).warnings, []);
});

test('unknown flags are usage errors that suggest and list the supported flags', () => {
  assert.throws(
    () => parseExecutorArgs(['--destinaton', 'x']),
    (e: unknown) => {
      assert.ok(e instanceof StowageError);
      assert.match(e.message, /unknown flag --destinaton/);
      assert.match(e.hint ?? '', /did you mean --destination\?/);
      for (const f of ['--dockerfile', '--context', '--tar-path', '--isolation', '--snapshotter']) assert.ok(e.hint!.includes(f), f);
      return true;
    },
  );
});

test('bad values and missing values are usage errors', () => {
  assert.throws(() => parseExecutorArgs(['--isolation=docker']), /--isolation must be auto, bwrap, chroot or none/);
  assert.throws(() => parseExecutorArgs(['--snapshot-mode', 'fast']), /--snapshot-mode must be full, redo or time/);
  assert.throws(() => parseExecutorArgs(['--target']), /--target needs a value/);
  assert.throws(() => parseExecutorArgs(['--no-push=maybe']), /--no-push takes true or false/);
  assert.throws(() => parseExecutorArgs(['--label', 'novalue']), /must be KEY=VALUE/);
  assert.throws(() => parseExecutorArgs(['--target', 'a', '--target', 'b']), /--target given more than once/);
  assert.throws(() => parseExecutorArgs(['stray']), /unexpected argument "stray"/);
});

/** Runs the executor in-process with stderr captured (stdout belongs to the test runner). */
async function runCapturingStderr(argv: string[]): Promise<{ code: number; stderr: string }> {
  const writes: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    writes.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await runExecutor(argv), stderr: writes.join('') };
  } finally {
    process.stderr.write = orig;
  }
}

test('runExecutor exits 2 on an unknown flag and prints the supported ones', async () => {
  const { code, stderr: err } = await runCapturingStderr(['--bogus-flag']);
  assert.equal(code, 2);
  assert.match(err, /unknown flag --bogus-flag/);
  assert.ok(supportedFlagNames().every((f) => err.includes(f)));
});

test('context and Dockerfile locations follow Kaniko', () => {
  assert.deepEqual(contextLocation('dir:///w/src'), { kind: 'dir', dir: '/w/src' });
  assert.deepEqual(contextLocation('tar:///w/ctx.tar.gz'), { kind: 'tar', file: '/w/ctx.tar.gz' });
  assert.deepEqual(contextLocation('./app'), { kind: 'dir', dir: './app' });
  assert.throws(() => contextLocation('s3://bucket/ctx.tgz'), /s3:\/\/ are not supported/);
  assert.equal(dockerfileLocation('/abs/Dockerfile', '/ctx', () => false), '/abs/Dockerfile');
  assert.equal(dockerfileLocation('Dockerfile', '/ctx', () => false), '/ctx/Dockerfile');
  assert.equal(repositoryOf('localhost:5000/a/b:v1'), 'localhost:5000/a/b');
  assert.equal(repositoryOf('localhost:5000/a/b'), 'localhost:5000/a/b');
});

test('no destination and no --no-push is a usage error (exit 2), before anything is built', async () => {
  const r = await runCapturingStderr(['--context', '/nonexistent-context-dir']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no destination given/);
  assert.match(r.stderr, /--no-push/);
});
