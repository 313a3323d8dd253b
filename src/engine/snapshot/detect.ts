/**
 * Chooses a snapshotter. `auto` is overlay when a probe mount works here, walk otherwise; an
 * explicit `overlay` that cannot mount is an error that says why, never a silent fallback.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StowageError, assertNever } from '../../util/errors.js';
import { OverlaySnapshotter } from './overlay.js';
import type { Snapshotter, SnapshotterOptions } from './types.js';
import { WalkSnapshotter } from './walk.js';

export type SnapshotterChoice = 'auto' | 'overlay' | 'walk';

export interface DetectOptions {
  /** Where to probe (the filesystem the rootfs will live on matters: overlay cannot stack on every fs). */
  probeDir?: string;
  /** Where rootfs work dirs go (also the default probe location). */
  workRoot?: string;
}

/** The shape the engine's composition root calls (`kind`, `workRoot`, `signal`). */
export async function createSnapshotter(options: { kind: SnapshotterChoice; workRoot?: string; signal?: AbortSignal }): Promise<Snapshotter> {
  options.signal?.throwIfAborted();
  const d: DetectOptions = {};
  if (options.workRoot !== undefined) {
    mkdirSync(options.workRoot, { recursive: true });
    d.workRoot = options.workRoot;
    d.probeDir = options.workRoot;
  }
  return detectSnapshotter(options.kind, d);
}

/** Tries a real overlay mount; returns why it failed, or undefined when it works. */
export function probeOverlay(options: DetectOptions = {}): string | undefined {
  let dir: string | undefined;
  try {
    dir = mkdtempSync(join(options.probeDir ?? tmpdir(), 'stowage-ovl-probe-'));
    for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(dir, d));
    // Mount and unmount in one child: each spawn from Node costs milliseconds of every build's startup.
    const m = spawnSync('sh', ['-c', 'mount -t overlay overlay -o "$1" m || exit $?; umount m', 'sh', 'lowerdir=l,upperdir=u,workdir=w,redirect_dir=off,index=off,metacopy=off'], { cwd: dir, encoding: 'utf8' });
    if (m.error) return m.error.message;
    if (m.status !== 0) return m.stderr.trim() || `mount exited ${m.status}`;
    return undefined;
  } catch (e) {
    return (e as Error).message;
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

export function detectSnapshotter(choice: SnapshotterChoice, options: DetectOptions = {}): Snapshotter {
  const so: SnapshotterOptions = {};
  if (options.workRoot !== undefined) so.workRoot = options.workRoot;
  switch (choice) {
    case 'walk':
      return new WalkSnapshotter(so);
    case 'overlay': {
      const why = probeOverlay(options);
      if (why !== undefined) {
        throw new StowageError('snapshot/overlay-unavailable', `the overlay snapshotter cannot mount here: ${why}`, {
          hint: 'run as root (or in a user namespace that may mount overlayfs), or use --snapshotter=walk',
        });
      }
      return new OverlaySnapshotter(so);
    }
    case 'auto':
      return probeOverlay(options) === undefined ? new OverlaySnapshotter(so) : new WalkSnapshotter(so);
    default:
      return assertNever(choice, 'snapshotter choice');
  }
}
