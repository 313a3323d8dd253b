/**
 * Mount points the sandbox has to create in the rootfs (a `--mount target=/run/cache` whose
 * directory does not exist, /etc/hosts in an image without one) and their removal after the step,
 * so they never end up in the layer (BuildKit's MountStubsCleaner, DOCKERFILE.md A21).
 *
 * A stub is removed only while it is still a stub: an empty directory or an empty regular file.
 * If the step put something there (possible for parent directories we created), it stays: it is
 * the step's output. The mtime/atime of pre-existing parent directories is restored, so a directory
 * that only hosted a stub does not look modified to a stat-based snapshotter.
 */
import { lstat, mkdir, rm, rmdir, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StowageError } from '../../util/errors.js';
import { pathComponents, resolveInRoot } from './in-root.js';

export type StubKind = 'dir' | 'file';

interface Created {
  hostPath: string;
  kind: StubKind;
  /** Remove even when no longer empty (emulated mounts under chroot/none isolation). */
  force: boolean;
}

/** Tracks what one step created in its rootfs; `cleanup()` undoes it. Not shared between steps. */
export class MountStubs {
  private readonly created: Created[] = [];
  private readonly parentTimes = new Map<string, { atime: Date; mtime: Date }>();

  constructor(private readonly rootfs: string) {}

  /** Host paths created so far, in creation order (for callers that want to report them). */
  get createdPaths(): string[] {
    return this.created.map((c) => c.hostPath);
  }

  /**
   * Makes sure `target` (absolute, in the rootfs) exists as a `kind`, creating missing components.
   * Returns the resolved in-root path (symlinks in the rootfs followed, clamped to it), which is
   * what the sandbox must mount on.
   */
  async ensure(target: string, kind: StubKind, options: { force?: boolean } = {}): Promise<{ inRootPath: string; hostPath: string }> {
    const resolved = await resolveInRoot(this.rootfs, target);
    if (resolved.exists) {
      const st = await lstat(resolved.hostPath);
      if (kind === 'dir' && !st.isDirectory()) {
        throw new StowageError('engine/mount-target-not-directory', `mount target ${target} exists in the rootfs and is not a directory`, {
          hint: 'choose another target, or remove the file in an earlier step',
        });
      }
      if (kind === 'file' && st.isDirectory()) {
        throw new StowageError('engine/mount-target-is-directory', `mount target ${target} exists in the rootfs as a directory, but a file is mounted there`, {
          hint: 'choose another target, or remove the directory in an earlier step',
        });
      }
      return { inRootPath: resolved.inRootPath, hostPath: resolved.hostPath };
    }
    const parts = pathComponents(resolved.inRootPath);
    let current = path.resolve(this.rootfs);
    for (let i = 0; i < parts.length; i++) {
      const next = path.join(current, parts[i]!);
      const isLast = i === parts.length - 1;
      const exists = await lstat(next).then(
        () => true,
        (e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOENT') return false;
          throw e;
        },
      );
      if (!exists) {
        await this.rememberParent(current);
        if (isLast && kind === 'file') {
          await writeFile(next, '', { flag: 'wx', mode: 0o644 });
        } else {
          await mkdir(next, { mode: 0o755 });
        }
        this.created.push({ hostPath: next, kind: isLast ? kind : 'dir', force: isLast && (options.force ?? false) });
      }
      current = next;
    }
    return { inRootPath: resolved.inRootPath, hostPath: resolved.hostPath };
  }

  /** Records a path the caller created itself (emulated mounts) for forced removal. */
  async adopt(hostPath: string, kind: StubKind): Promise<void> {
    await this.rememberParent(path.dirname(hostPath));
    this.created.push({ hostPath, kind, force: true });
  }

  private async rememberParent(dir: string): Promise<void> {
    if (this.parentTimes.has(dir) || this.created.some((c) => c.hostPath === dir)) return;
    const st = await lstat(dir);
    this.parentTimes.set(dir, { atime: st.atime, mtime: st.mtime });
  }

  /** Removes the stubs (newest first) and restores parent directory times. Never throws for a stub the step filled. */
  async cleanup(): Promise<void> {
    for (const c of [...this.created].reverse()) {
      try {
        if (c.force) {
          await rm(c.hostPath, { recursive: true, force: true });
        } else if (c.kind === 'dir') {
          await rmdir(c.hostPath);
        } else {
          const st = await lstat(c.hostPath);
          if (st.isFile() && st.size === 0) await unlink(c.hostPath);
        }
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      }
    }
    this.created.length = 0;
    for (const [dir, t] of this.parentTimes) {
      await utimes(dir, t.atime, t.mtime).catch(() => undefined);
    }
    this.parentTimes.clear();
  }
}
