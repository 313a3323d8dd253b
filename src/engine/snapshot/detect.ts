/**
 * Chooses a snapshotter. `auto` is overlay when a probe mount works here, walk otherwise; an
 * explicit `overlay` that cannot mount is an error that says why, never a silent fallback. The
 * probe needs none of the snapshotters' code: their modules are loaded once one is made.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StowageError, assertNever } from '../../util/errors.js';
import type { Snapshotter, SnapshotterKind, SnapshotterOptions } from './types.js';

export type SnapshotterChoice = 'auto' | 'overlay' | 'walk';

export interface DetectOptions {
  /** Where to probe (the filesystem the rootfs will live on matters: overlay cannot stack on every fs). */
  probeDir?: string;
  /** Where rootfs work dirs go (also the default probe location). */
  workRoot?: string;
}

/** The shape the engine's composition root calls (`kind`, `workRoot`, `signal`). */
export async function createSnapshotter(options: { kind: SnapshotterChoice; workRoot?: string; signal?: AbortSignal }): Promise<Snapshotter> {
  const kind = await chooseSnapshotter(options);
  return snapshotterOf(kind, options.workRoot !== undefined ? { workRoot: options.workRoot } : {});
}

/** Which snapshotter `kind` means here (probing where it must), without loading either. */
export async function chooseSnapshotter(options: { kind: SnapshotterChoice; workRoot?: string; signal?: AbortSignal }): Promise<SnapshotterKind> {
  options.signal?.throwIfAborted();
  const d: DetectOptions = {};
  if (options.workRoot !== undefined) {
    mkdirSync(options.workRoot, { recursive: true });
    d.workRoot = options.workRoot;
    d.probeDir = options.workRoot;
  }
  return detectSnapshotterKind(options.kind, d, options.signal);
}

/** A snapshotter of a kind already chosen. */
export async function snapshotterOf(kind: SnapshotterKind, options: SnapshotterOptions): Promise<Snapshotter> {
  switch (kind) {
    case 'overlay':
      return new (await import('./overlay.js')).OverlaySnapshotter(options);
    case 'walk':
      return new (await import('./walk.js')).WalkSnapshotter(options);
    default:
      return assertNever(kind, 'snapshotter kind');
  }
}

/**
 * Tries a real overlay mount; resolves to why it failed, or undefined when it works. Asynchronous,
 * so the engine can probe while it pulls the base image.
 */
export async function probeOverlay(options: DetectOptions = {}, signal?: AbortSignal): Promise<string | undefined> {
  let dir: string | undefined;
  try {
    dir = mkdtempSync(join(options.probeDir ?? tmpdir(), 'stowage-ovl-probe-'));
    for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(dir, d));
    // Mount and unmount in one child: one spawn from Node instead of two. The child is not given
    // the build's signal: killed between its mount and umount it would leave the probe mounted
    // (it takes milliseconds; the caller checks the signal when it returns).
    signal?.throwIfAborted();
    return await new Promise<string | undefined>((resolve) => {
      const child = spawn('sh', ['-c', 'mount -t overlay overlay -o "$1" m || exit $?; umount m', 'sh', 'lowerdir=l,upperdir=u,workdir=w,redirect_dir=off,index=off,metacopy=off'], {
        cwd: dir,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => {
        if (stderr.length < 8192) stderr += c.toString('utf8');
      });
      child.on('error', (e) => resolve(e.message));
      child.on('close', (code) => resolve(code === 0 ? undefined : stderr.trim() || `mount exited ${code}`));
    });
  } catch (e) {
    return (e as Error).message;
  } finally {
    if (dir !== undefined) removeProbeDir(dir);
  }
}

/**
 * Removes the probe's directories one by one (a recursive rmSync costs milliseconds of startup):
 * the kernel's `w/work` first. A mount point that is still mounted (umount failed) is left, never
 * descended into.
 */
function removeProbeDir(dir: string): void {
  for (const d of ['m', 'u', 'l', 'w/work', 'w', '']) {
    try {
      rmdirSync(join(dir, d));
    } catch {
      // absent, or still mounted
    }
  }
}

export async function detectSnapshotter(choice: SnapshotterChoice, options: DetectOptions = {}, signal?: AbortSignal): Promise<Snapshotter> {
  return snapshotterOf(await detectSnapshotterKind(choice, options, signal), options.workRoot !== undefined ? { workRoot: options.workRoot } : {});
}

async function detectSnapshotterKind(choice: SnapshotterChoice, options: DetectOptions, signal?: AbortSignal): Promise<SnapshotterKind> {
  switch (choice) {
    case 'walk':
      return 'walk';
    case 'overlay': {
      const why = await probeOverlay(options, signal);
      signal?.throwIfAborted();
      if (why !== undefined) {
        throw new StowageError('snapshot/overlay-unavailable', `the overlay snapshotter cannot mount here: ${why}`, {
          hint: 'run as root (or in a user namespace that may mount overlayfs), or use --snapshotter=walk',
        });
      }
      return 'overlay';
    }
    case 'auto': {
      const why = await probeOverlay(options, signal);
      signal?.throwIfAborted();
      return why === undefined ? 'overlay' : 'walk';
    }
    default:
      return assertNever(choice, 'snapshotter choice');
  }
}
