/**
 * What a step sees of the build context outside COPY/ADD — `RUN --mount=type=bind` (and a cache
 * mount seeded) from the context: the context as BuildKit has it, i.e. with what .dockerignore
 * excludes left out (BuildKit's client sends the context already filtered). Binding the directory
 * itself would show a step the files users keep out of builds (`.env`, `.git`, credentials), and
 * the step cache key, made from the filtered content, would not cover what the step read.
 */
import { copyFileSync, constants as fsConstants, linkSync, lchownSync, lstatSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, chmodSync, utimesSync, type Stats } from 'node:fs';
import * as path from 'node:path';
import { StowageError } from '../../util/errors.js';
import type { IgnoreMatcher } from './dockerignore.js';
import { compareBytes } from './resolve.js';

export interface ContextViewRequest {
  /** Host path of the source inside the context (already resolved in it). */
  hostPath: string;
  /** The same, relative to the context root (`''` for the root itself). */
  rel: string;
  ignore: IgnoreMatcher;
  /** Makes an empty private directory for a filtered copy (removed by the caller). */
  tempDir: () => Promise<string>;
  signal?: AbortSignal;
}

/**
 * The host path to show for the request: `hostPath` itself when .dockerignore excludes nothing in
 * it, otherwise a copy of what it keeps under a temp dir — directories made with their modes,
 * owners and mtimes, files hard-linked (copied when they cannot be: another filesystem, or
 * protected_hardlinks for a non-root user), symlinks made again with the same target. Sockets,
 * FIFOs and devices are left out, as COPY leaves them out.
 */
export async function contextView(req: ContextViewRequest): Promise<string> {
  const { ignore } = req;
  if (ignore.patterns.length === 0) return req.hostPath;
  if (req.rel !== '' && ignore.matches(req.rel) && !(lstatSync(req.hostPath).isDirectory() && ignore.mayHaveExceptionsUnder(req.rel))) {
    throw new StowageError('context/excluded', `${req.rel} is excluded by .dockerignore, so a step cannot see it`, {
      hint: `remove the pattern that matches ${req.rel} from .dockerignore, or mount another path`,
    });
  }
  const root = lstatSync(req.hostPath);
  if (!root.isDirectory()) return req.hostPath; // a file .dockerignore keeps
  const kept: KeptEntry[] = [];
  const excludedAny = collectKept(req.hostPath, req.rel, ignore, kept, req.signal);
  if (!excludedAny) return req.hostPath;
  const dest = path.join(await req.tempDir(), 'context');
  mkdirSync(dest);
  const dirs: { path: string; st: Stats }[] = [{ path: dest, st: root }];
  for (const e of kept) {
    req.signal?.throwIfAborted();
    const target = path.join(dest, e.sub);
    if (e.st.isDirectory()) {
      mkdirSync(target);
      dirs.push({ path: target, st: e.st });
    } else if (e.st.isSymbolicLink()) {
      symlinkSync(readlinkSync(e.host), target);
      keepOwner(target, e.st);
    } else {
      linkOrCopy(e.host, target);
    }
  }
  // Deepest first: making an entry changes its parent's mtime.
  for (const d of dirs.reverse()) {
    chmodSync(d.path, d.st.mode & 0o7777);
    keepOwner(d.path, d.st);
    utimesSync(d.path, d.st.atime, d.st.mtime);
  }
  return dest;
}

interface KeptEntry {
  host: string;
  /** Path below the view's root. */
  sub: string;
  st: Stats;
}

/**
 * Appends the entries below `host` that .dockerignore keeps (parents before children) and tells
 * whether it excluded any. An excluded directory is still walked when an exception may re-include
 * something below it (fsutil's rule); it is kept only if something below it is.
 */
function collectKept(host: string, rel: string, ignore: IgnoreMatcher, out: KeptEntry[], signal: AbortSignal | undefined, sub = ''): boolean {
  signal?.throwIfAborted();
  let excludedAny = false;
  const names = readdirSync(host).sort(compareBytes);
  for (const name of names) {
    const childHost = path.join(host, name);
    const childRel = rel === '' ? name : `${rel}/${name}`;
    const childSub = sub === '' ? name : `${sub}/${name}`;
    const st = lstatSync(childHost);
    const excluded = ignore.matches(childRel);
    if (st.isDirectory()) {
      if (excluded && !ignore.mayHaveExceptionsUnder(childRel)) {
        excludedAny = true;
        continue;
      }
      const at = out.length;
      out.push({ host: childHost, sub: childSub, st });
      if (collectKept(childHost, childRel, ignore, out, signal, childSub)) excludedAny = true;
      // An excluded directory walked for its exceptions: gone again when none matched.
      if (excluded && out.length === at + 1) {
        out.pop();
        excludedAny = true;
      }
      continue;
    }
    if (excluded || !(st.isFile() || st.isSymbolicLink())) {
      excludedAny = true;
      continue;
    }
    out.push({ host: childHost, sub: childSub, st });
  }
  return excludedAny;
}

function linkOrCopy(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw e;
    copyFileSync(from, to, fsConstants.COPYFILE_FICLONE);
    const st = lstatSync(from);
    chmodSync(to, st.mode & 0o7777);
    keepOwner(to, st);
    utimesSync(to, st.atime, st.mtime);
  }
}

/** Owners as in the context where this process may set them (root); a non-root view stays its own. */
function keepOwner(p: string, st: Stats): void {
  try {
    lchownSync(p, st.uid, st.gid);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
  }
}
