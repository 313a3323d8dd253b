/**
 * Resolving paths *inside* a rootfs directory the way the kernel would after a chroot into it:
 * absolute symlinks and `..` are clamped at the root, so a hostile image cannot make us read or
 * write a host file (`/etc/passwd -> /../../../etc/shadow`, `/etc -> /host/etc`).
 *
 * Every host-side access to a user-controlled rootfs (passwd lookup, mount points, cwd) goes
 * through `resolveInRoot`. Nothing else runs in the rootfs while we resolve (steps of one stage are
 * sequential), so the result stays valid until we use it.
 */
import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import { StowageError } from '../../util/errors.js';

/** Linux's limit for symlinks followed in one lookup (MAXSYMLINKS). */
const MAX_SYMLINKS = 40;

export interface InRootPath {
  /** Absolute host path, guaranteed to be `root` or below it, with no symlink in any existing component. */
  hostPath: string;
  /** The same location as an absolute path inside the rootfs (`/etc/passwd`). */
  inRootPath: string;
  /** False when some component does not exist; `hostPath` then names where it would be created. */
  exists: boolean;
}

export interface ResolveInRootOptions {
  /** Follow a symlink in the last component too (default true; false for lstat-like use). */
  followFinal?: boolean;
}

/** Splits an in-root path into its non-empty components (`/a//b/` → `a`, `b`). */
export function pathComponents(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Resolves `p` (absolute or relative to the rootfs's `/`) inside `root`. Missing components are
 * kept literally (so callers can create them); a symlink loop or a path through a non-directory
 * is an error.
 */
export async function resolveInRoot(root: string, p: string, options: ResolveInRootOptions = {}): Promise<InRootPath> {
  const followFinal = options.followFinal ?? true;
  const hostRoot = path.resolve(root);
  const resolved: string[] = [];
  let pending = pathComponents(p);
  let symlinks = 0;
  let exists = true;
  while (pending.length > 0) {
    const [head, ...rest] = pending as [string, ...string[]];
    pending = rest;
    if (head === '..') {
      resolved.pop(); // clamped: `..` at the root stays at the root
      continue;
    }
    if (!exists) {
      resolved.push(head);
      continue;
    }
    const candidate = path.join(hostRoot, ...resolved, head);
    let st;
    try {
      st = await lstat(candidate);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        exists = false;
        resolved.push(head);
        continue;
      }
      if (code === 'ENOTDIR') {
        throw new StowageError('engine/path-not-directory', `a component of ${p} is not a directory inside the rootfs`);
      }
      throw e;
    }
    if (st.isSymbolicLink() && (followFinal || pending.length > 0)) {
      if (++symlinks > MAX_SYMLINKS) {
        throw new StowageError('engine/symlink-loop', `too many levels of symbolic links resolving ${p} inside the rootfs`);
      }
      const target = await readlink(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      pending = [...pathComponents(target), ...pending];
      continue;
    }
    if (!st.isDirectory() && pending.length > 0) {
      throw new StowageError('engine/path-not-directory', `/${[...resolved, head].join('/')} is not a directory inside the rootfs, so ${p} cannot exist`);
    }
    resolved.push(head);
  }
  return { hostPath: path.join(hostRoot, ...resolved), inRootPath: '/' + resolved.join('/'), exists };
}

/** Normalises an in-container absolute path (`/a/./b/../c/` → `/a/c`); `..` clamps at `/`. */
export function cleanContainerPath(p: string, cwd = '/'): string {
  const joined = p.startsWith('/') ? p : `${cwd}/${p}`;
  const out: string[] = [];
  for (const c of pathComponents(joined)) {
    if (c === '..') out.pop();
    else out.push(c);
  }
  return '/' + out.join('/');
}
