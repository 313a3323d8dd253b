/**
 * What `--isolation=none` must never delete, overwrite or put into a layer when the stage's rootfs is
 * the container's own `/` (Kaniko's ignore list): the kernel's and the runtime's mounts, stowage's own
 * install dir and its inputs/outputs, plus what the user adds with `--ignore-path`.
 *
 * Everything here only reads: `readMountPoints` /proc/self/mountinfo, `buildIgnoreList` the
 * symlinks along the paths it is given (lstat and readlink under the root, never following a link
 * out of it).
 */
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { ScopedPath } from '../scoped-path.js';

/**
 * Kaniko's fixed entries: kernel filesystems, the runtime's sockets (/var/run), /etc/mtab (a link
 * into /proc, or the runtime's file). /etc/hosts, /etc/resolv.conf and /etc/hostname are the
 * runtime's bind mounts in a container (found in mountinfo); they are listed too so a build root
 * outside a container treats them as every other snapshotter does (never in a layer).
 */
export const FIXED_IGNORE: readonly string[] = ['/proc', '/sys', '/dev', '/var/run', '/etc/mtab', '/etc/hosts', '/etc/resolv.conf', '/etc/hostname'];

/** `\040`-style octal escapes of /proc/self/mountinfo fields. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** Mount points (field 5) of /proc/self/mountinfo text, as absolute paths. */
export function parseMountInfo(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = unescapeMountField(f[4]!);
    if (mp.startsWith('/')) out.push(mp);
  }
  return out;
}

/** The mount points this process sees; none when /proc is not mounted (then only the fixed list applies). */
export function readMountPoints(file = '/proc/self/mountinfo'): string[] {
  try {
    return parseMountInfo(readFileSync(file, 'utf8'));
  } catch {
    return [];
  }
}

export interface IgnoreListInput {
  /** The build root (absolute). */
  root: string;
  /** Absolute mount points (from mountinfo); the root's own mount is not an ignored path. */
  mountPoints: readonly string[];
  /** Absolute paths stowage itself needs during the build: install dir, cache dir, context, outputs. */
  protect: readonly string[];
  /** `--ignore-path` values: absolute paths *inside the build root* (as the build's steps see them). */
  ignorePaths: readonly string[];
}

function normalizeAbs(p: string): string {
  return path.posix.normalize(p).replace(/\/+$/, '') || '/';
}

/** `abs` relative to `root` when it lies strictly below it, else undefined. */
export function relativeToRoot(root: string, abs: string): string | undefined {
  const r = normalizeAbs(root);
  const a = normalizeAbs(abs);
  if (r === '/') return a === '/' ? undefined : a.slice(1);
  return a.startsWith(r + '/') ? a.slice(r.length + 1) : undefined;
}

const MAX_SYMLINK_HOPS = 40;

/**
 * Where `rel` (root-relative) leads inside `root` as it is now: every symlink met on the way (their
 * own root-relative paths) and the path they resolve to, scoped to the root as the unpacker scopes
 * layer paths (an absolute target restarts at the root, `..` stops at it). Components that do not
 * exist are kept as named. Undefined for a symlink loop.
 */
export function symlinksAlong(root: string, rel: string): { links: string[]; resolved: string } | undefined {
  const links: string[] = [];
  const walk = new ScopedPath(rel.split('/'));
  for (let c = walk.next(); c !== undefined; c = walk.next()) {
    const here = walk.at(c);
    const host = root === '/' ? `/${here}` : `${root}/${here}`;
    const st = lstatSync(host, { throwIfNoEntry: false });
    if (st?.isSymbolicLink() === true) {
      links.push(here);
      if (!walk.follow(readlinkSync(host), MAX_SYMLINK_HOPS)) return undefined;
      continue;
    }
    walk.enter(c);
    // Below a missing component nothing exists, so nothing more can be a link.
    if (st === undefined) return { links, resolved: [walk.entered, ...walk.rest].join('/') };
  }
  return { links, resolved: walk.entered };
}

/**
 * The ignore list as paths relative to the root (no leading `/`), sorted and without duplicates.
 * Host paths (mounts, protected paths) count only where they lie below the root; `--ignore-path` and
 * the fixed list are paths as seen from inside the root.
 *
 * A protected path or `--ignore-path` reached through symlinks keeps them too: the symlinks
 * themselves (else emptying the root deletes them and the path no longer leads anywhere, or a layer
 * puts its own entry there) and, for `--ignore-path`, the path they lead to (the files the user
 * meant; protected host paths come with their real path from the caller). Mount points are real
 * paths already, and the fixed list is Kaniko's, taken as written.
 */
export function buildIgnoreList(input: IgnoreListInput): string[] {
  const out = new Set<string>();
  const normal = (rel: string | undefined): string | undefined => {
    if (rel === undefined) return undefined;
    const parts = rel.split('/').filter((c) => c !== '' && c !== '.');
    if (parts.length === 0 || parts.includes('..')) return undefined;
    return parts.join('/');
  };
  const add = (rel: string | undefined): void => {
    const n = normal(rel);
    if (n !== undefined) out.add(n);
  };
  const addWithLinks = (rel: string | undefined, keepResolved: boolean): void => {
    const n = normal(rel);
    if (n === undefined) return;
    out.add(n);
    const along = symlinksAlong(input.root, n);
    if (along === undefined) return;
    for (const l of along.links) out.add(l);
    if (keepResolved) add(along.resolved);
  };
  for (const p of input.mountPoints) add(relativeToRoot(input.root, p));
  for (const p of input.protect) addWithLinks(relativeToRoot(input.root, p), false);
  for (const p of FIXED_IGNORE) add(relativeToRoot('/', p));
  for (const p of input.ignorePaths) addWithLinks(relativeToRoot('/', path.posix.resolve('/', p)), true);
  return [...out].sort();
}

/** Whether `rel` is ignored itself or lies inside an ignored path. */
export function isIgnored(rel: string, ignore: ReadonlySet<string>): boolean {
  if (ignore.has(rel)) return true;
  for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) if (ignore.has(rel.slice(0, i))) return true;
  return false;
}

/** Whether an ignored path lies strictly below `rel` (so `rel` must stay a directory). */
export function holdsIgnored(rel: string, ignore: ReadonlySet<string>): boolean {
  const prefix = rel === '' ? '' : rel + '/';
  for (const p of ignore) if (p.startsWith(prefix) && p !== rel) return true;
  return false;
}
