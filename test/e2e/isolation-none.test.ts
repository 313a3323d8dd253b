/**
 * `--isolation=none` (the last resort where even chroot is refused) must never build a wrong image:
 * without chroot a step's `/` is the container's own, so a step writing `/f` would succeed while
 * the stage's rootfs — and the image — silently lack `/f`. Until the engine can use `/` itself as
 * the rootfs (Kaniko's model), runStep refuses with an error that says what to do instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStep } from '../../src/engine/sandbox/run-step.js';
import { StowageError } from '../../src/util/errors.js';

test('--isolation=none with a rootfs other than / is refused before the step runs, with the alternatives', async () => {
  const rootfs = mkdtempSync(join(tmpdir(), 'stowage-none-rootfs-'));
  const marker = join(tmpdir(), `stowage-none-marker-${process.pid}`);
  try {
    await assert.rejects(
      runStep({
        rootfs,
        argv: ['/bin/sh', '-c', `echo x > ${marker}`],
        env: [],
        cwd: '/',
        user: { uid: 0, gid: 0, supplementaryGids: [] },
        network: 'default',
        mounts: [],
        isolation: 'none',
        signal: AbortSignal.timeout(10_000),
      }),
      (e: unknown) => e instanceof StowageError && e.code === 'engine/isolation-none-unsupported' && /missing from the image/.test(e.message) && /--isolation=chroot/.test(e.hint ?? ''),
    );
    assert.equal(existsSync(marker), false, 'the step never ran against the host/container filesystem');
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
    rmSync(marker, { force: true });
  }
});
