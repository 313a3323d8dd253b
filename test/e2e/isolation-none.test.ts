/**
 * `--isolation=none` must never build a wrong image: without chroot a step's `/` is the container's
 * own, so a step writing `/f` into any rootfs other than the engine's build root would succeed while
 * the image silently lacked `/f`. runStep refuses such a rootfs before the step runs, and runs the
 * step directly (cwd = WORKDIR inside the root) when the rootfs IS the build root. The build root
 * here is a temp dir, never `/`; the real `/` case is test/e2e/unprivileged.test.ts (docker).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runStep } from '../../src/engine/sandbox/run-step.js';
import { StowageError } from '../../src/util/errors.js';

const step = (rootfs: string, argv: string[], extra: { buildRoot?: string; cwd?: string; uid?: number } = {}) =>
  runStep({
    rootfs,
    argv,
    env: ['GREETING=hi'],
    cwd: extra.cwd ?? '/',
    user: { uid: extra.uid ?? process.getuid!(), gid: extra.uid ?? process.getgid!(), supplementaryGids: [] },
    network: 'default',
    mounts: [],
    isolation: 'none',
    ...(extra.buildRoot !== undefined ? { buildRoot: extra.buildRoot } : {}),
    signal: AbortSignal.timeout(10_000),
  });

test('--isolation=none with a rootfs that is not the build root is refused before the step runs, with the alternatives', async () => {
  const rootfs = mkdtempSync(join(tmpdir(), 'stowage-none-rootfs-'));
  const other = mkdtempSync(join(tmpdir(), 'stowage-none-buildroot-'));
  const marker = join(tmpdir(), `stowage-none-marker-${process.pid}`);
  try {
    for (const buildRoot of [undefined, other]) {
      await assert.rejects(
        step(rootfs, ['/bin/sh', '-c', `echo x > ${marker}`], buildRoot === undefined ? {} : { buildRoot }),
        (e: unknown) =>
          e instanceof StowageError && e.code === 'engine/isolation-none-unsupported' && /missing from the image/.test(e.message) && /executor --isolation=none/.test(e.hint ?? '') && /--isolation=chroot/.test(e.hint ?? ''),
      );
    }
    assert.equal(existsSync(marker), false, 'the step never ran against the host/container filesystem');
    assert.deepEqual(readdirSync(rootfs), [], 'nothing was created in the refused rootfs');
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
    rmSync(marker, { force: true });
  }
});

test('--isolation=none in the build root: the step runs directly with cwd = WORKDIR (created) and the step env', async () => {
  const root = mkdtempSync(join(tmpdir(), 'stowage-none-root-'));
  assert.notEqual(resolve(root), '/');
  try {
    const r = await step(root, ['/bin/sh', '-c', 'echo "$GREETING" > out.txt; pwd; exit 3'], { buildRoot: root, cwd: '/app/sub' });
    assert.equal(r.exitCode, 3);
    assert.equal(readFileSync(join(root, 'app/sub/out.txt'), 'utf8'), 'hi\n');
    assert.deepEqual(r.outputTail, [join(root, 'app/sub')], 'no chroot: the step sees host paths, which is why the build root must be /');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('--isolation=none switches to the step user through Node (no setpriv): files are owned by that uid', { skip: process.getuid?.() !== 0 ? 'needs root to switch users' : false }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'stowage-none-user-'));
  try {
    const { chmodSync, statSync } = await import('node:fs');
    chmodSync(root, 0o777);
    const r = await step(root, ['/bin/sh', '-c', 'id -u; id -G; echo x > mine.txt'], { buildRoot: root, uid: 4321 });
    assert.equal(r.exitCode, 0, r.outputTail.join('\n'));
    assert.equal(r.outputTail[0], '4321');
    assert.equal(r.outputTail[1], '4321', 'supplementary groups are cleared (documented limitation)');
    assert.equal(statSync(join(root, 'mine.txt')).uid, 4321);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
