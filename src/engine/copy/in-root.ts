/**
 * Resolving a path inside a root directory the way a chroot would (like Go's securejoin), so no
 * symlink or `..` can make a read or write land outside the root. Every write into a rootfs and
 * every read from a build context goes through here.
 */
import { lstat, readlink, realpath } from 'node:fs/promises';
import * as path from 'node:path';
import { StowageError } from '../../util/errors.js';

export interface InRootPath {
  /** Absolute host path, inside the root. */
  hostPath: string;
  /** The same path relative to the root, '/'-separated; '' is the root itself. */
  rel: string;
}

export interface ResolveInRootOptions {
  /** Follow a symlink in the last component too (a destination directory named through a link). */
  followFinal: boolean;
  /**
   * 'chroot' (a rootfs): absolute link targets start at the root and `..` stops at it.
   * 'contained' (a build context): links are host paths and must stay inside the root, or the
   * lookup fails with `context/escapes`.
   */
  mode?: 'chroot' | 'contained';
  /** The path as the user wrote it, for error messages. */
  displayPath?: string;
}

const MAX_SYMLINKS = 255;

/** The root's canonical host path (symlinks in the root's own path resolved). */
export async function canonicalRoot(root: string): Promise<string> {
  return realpath(root);
}

/**
 * Resolves `p` (absolute or relative, both taken from the root) inside `root`, which must be
 * canonical (see canonicalRoot). Missing components are fine: the rest is joined lexically.
 */
export async function resolveInRoot(root: string, p: string, opts: ResolveInRootOptions): Promise<InRootPath> {
  const mode = opts.mode ?? 'chroot';
  // The user's own `..` never escapes, in either mode: it is cleaned lexically first.
  const pending = cleanComponents(p);
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const comp = pending.shift()!;
    if (comp === '' || comp === '.') continue;
    if (comp === '..') {
      if (resolved.length === 0) {
        if (mode === 'contained') throw escapeError(opts.displayPath ?? p, root);
        continue;
      }
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, comp];
    const isLast = pending.length === 0;
    if (isLast && !opts.followFinal) {
      resolved.push(comp);
      break;
    }
    const host = path.join(root, ...candidate);
    let st;
    try {
      st = await lstat(host);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        // Nothing there: the rest cannot be links either.
        resolved.push(comp, ...pending.filter((c) => c !== '' && c !== '.'));
        return finish(root, lexicalRest(resolved));
      }
      throw e;
    }
    if (!st.isSymbolicLink()) {
      resolved.push(comp);
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw new StowageError('copy/symlink-loop', `too many levels of symbolic links resolving ${opts.displayPath ?? p}`);
    }
    const target = await readlink(host);
    if (target.startsWith('/')) {
      if (mode === 'contained') {
        const rel = path.relative(root, target);
        if (rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)) {
          throw escapeError(opts.displayPath ?? p, root, candidate.join('/'), target);
        }
        resolved.length = 0;
        pending.unshift(...cleanComponents(rel));
      } else {
        resolved.length = 0;
        pending.unshift(...target.split('/'));
      }
    } else {
      // Relative targets are resolved against the link's directory, `..` included.
      if (mode === 'contained') {
        const depthAfter = lexicalDepth(resolved.length, target);
        if (depthAfter < 0) throw escapeError(opts.displayPath ?? p, root, candidate.join('/'), target);
      }
      pending.unshift(...target.split('/'));
    }
  }
  return finish(root, resolved);
}

function finish(root: string, comps: string[]): InRootPath {
  const rel = comps.join('/');
  return { hostPath: rel === '' ? root : path.join(root, rel), rel };
}

/** Components left after a missing one are joined lexically, `..` still clamped at the root. */
function lexicalRest(comps: string[]): string[] {
  const out: string[] = [];
  for (const c of comps) {
    if (c === '..') out.pop();
    else out.push(c);
  }
  return out;
}

function cleanComponents(p: string): string[] {
  const c = path.posix.normalize('/' + p);
  return c === '/' ? [] : c.slice(1).split('/').filter((x) => x !== '' && x !== '.');
}

/** The minimum depth reached while walking `target` from `depth` (negative: above the root). */
function lexicalDepth(depth: number, target: string): number {
  let d = depth;
  let min = d;
  for (const c of target.split('/')) {
    if (c === '..') d--;
    else if (c !== '' && c !== '.') d++;
    min = Math.min(min, d);
  }
  return min;
}

function escapeError(displayPath: string, root: string, link?: string, target?: string): StowageError {
  const via = link === undefined ? '' : ` (symlink "${link}" points to "${target}")`;
  return new StowageError('context/escapes', `"${displayPath}" resolves outside of the build context${via}`, {
    hint: `only files inside ${root} can be copied; copy the target into the context instead of linking to it`,
  });
}

export interface MkdirAllOptions {
  /** Mode of directories that get created (existing ones are left alone). */
  mode: number;
  /** Owner of directories that get created. */
  uid: number;
  gid: number;
  /** mtime for created directories (default: now). */
  mtime?: Date;
  mkdir: (p: string, mode: number) => Promise<unknown>;
  chown: (p: string, uid: number, gid: number) => Promise<unknown>;
  chmod: (p: string, mode: number) => Promise<unknown>;
  utimes?: (p: string, a: Date, m: Date) => Promise<unknown>;
}

/**
 * `mkdir -p` inside a chroot-style root: each component is resolved in the root (links followed
 * inside it), missing ones created with the given mode and owner. The result must be a directory.
 */
export async function mkdirAllInRoot(root: string, p: string, opts: MkdirAllOptions): Promise<InRootPath> {
  const target = await resolveInRoot(root, p, { followFinal: true });
  const comps = target.rel === '' ? [] : target.rel.split('/');
  let cur = '';
  for (let i = 0; i < comps.length; i++) {
    cur = cur === '' ? comps[i]! : `${cur}/${comps[i]!}`;
    const host = path.join(root, cur);
    let st;
    try {
      st = await lstat(host);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (st === undefined) {
      await opts.mkdir(host, 0o700);
      await opts.chown(host, opts.uid, opts.gid);
      await opts.chmod(host, opts.mode);
      if (opts.mtime && opts.utimes) await opts.utimes(host, opts.mtime, opts.mtime);
      continue;
    }
    if (st.isSymbolicLink()) {
      // Created by someone between our resolve and now, or a link to a missing target: resolve again.
      const again = await resolveInRoot(root, cur, { followFinal: true });
      return mkdirAllInRoot(root, [again.rel, ...comps.slice(i + 1)].join('/'), opts);
    }
    if (!st.isDirectory()) {
      throw new StowageError('copy/not-a-directory', `cannot create directory /${cur}: a file of that name exists`, {
        hint: 'remove the file in an earlier step or choose another destination',
      });
    }
  }
  return target;
}
