/**
 * Turning COPY/ADD source arguments into concrete entries of a source tree (a build context or
 * another stage's rootfs), per DOCKERFILE.md A10: cleaning, per-component wildcards, `--parents`
 * with `/./` pivots and `**`, `.dockerignore` and `--exclude` filtering, top-level symlinks
 * followed but only inside the tree.
 */
import { lstat, readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { StowageError } from '../../util/errors.js';
import { resolveInRoot } from '../copy/in-root.js';
import { createMatcher, parsePatternList, type IgnoreMatcher } from './dockerignore.js';
import { cleanSourcePath, containsWildcards, goMatch, unescapeLiteral } from './glob.js';

/** One concrete source entry. */
export interface ResolvedSource {
  readonly kind: 'path';
  /** Path in the source tree as named or matched ('/'-separated, no leading '/'; '.' = the root). */
  readonly relPath: string;
  /** Host path of what it names after following top-level symlinks, inside the tree. */
  readonly hostPath: string;
  /** The same, relative to the tree's root (what `.dockerignore` is checked against). */
  readonly resolvedRel: string;
  readonly isDir: boolean;
  /**
   * `--parents`: where the entry lands, relative to the destination directory. Absent for the
   * normal rule (a directory's contents, or a file by its base name).
   */
  readonly parentsPath?: string;
  /** `--parents`: tree-relative directory the parentsPath is relative to (the pivot). */
  readonly parentsBase?: string;
}

/** A heredoc source: an inline file, content already expanded by the caller. */
export interface InlineSource {
  readonly kind: 'inline';
  readonly name: string;
  readonly content: string | Uint8Array;
}

export interface ResolveSourcesOptions {
  /** A wildcard that matches nothing is fine (Dockerfile COPY/ADD always allow it). */
  allowEmptyWildcard: boolean;
  parents: boolean;
  /** `--exclude` patterns, matched against paths relative to each source. */
  excludes: readonly string[];
  /** `.dockerignore` of a build context; absent for `--from` trees. */
  ignore?: IgnoreMatcher;
  /** 'contained' for a build context (links must stay inside), 'chroot' for a rootfs. */
  mode: 'contained' | 'chroot';
  signal?: AbortSignal;
}

/** Resolves source arguments in the tree rooted at `root` (canonical path). */
export async function resolveSourcesIn(
  root: string,
  patterns: readonly string[],
  opts: ResolveSourcesOptions,
): Promise<ResolvedSource[]> {
  const out: ResolvedSource[] = [];
  for (const pattern of patterns) {
    opts.signal?.throwIfAborted();
    if (/^https?:\/\//i.test(pattern)) {
      // Never a path: ADD takes URLs through addIntoRootfs (raw strings or { kind: 'url' }).
      throw new StowageError('copy/url-source', `source can't be a URL for COPY: ${pattern.replace(/\/\/[^/@]*@/, '//')}`, {
        hint: 'use ADD to download files, or RUN with curl/wget',
      });
    }
    if (opts.parents) out.push(...(await resolveParents(root, pattern, opts)));
    else out.push(...(await resolveOne(root, pattern, opts)));
  }
  return out;
}

function notFound(pattern: string, extra = ''): StowageError {
  return new StowageError('copy/source-not-found', `source "${pattern}" not found${extra}`, {
    hint: 'check the path is relative to the build context (or the stage root for --from) and spelled right',
  });
}

function isIgnored(ignore: IgnoreMatcher | undefined, rel: string, isDir: boolean): boolean {
  if (ignore === undefined || rel === '' || rel === '.') return false;
  if (!ignore.matches(rel)) return false;
  // An excluded directory still exists in the context when an exception re-includes something.
  return !(isDir && ignore.mayHaveExceptionsUnder(rel));
}

/** Splits a cleaned source path at its first component holding a wildcard. */
export function splitWildcards(rel: string): { fixed: string[]; wild: string[] } {
  const comps = rel === '.' ? [] : rel.split('/');
  const i = comps.findIndex(containsWildcards);
  if (i < 0) return { fixed: comps.map(unescapeLiteral), wild: [] };
  return { fixed: comps.slice(0, i).map(unescapeLiteral), wild: comps.slice(i) };
}

async function follow(root: string, rel: string, display: string, opts: ResolveSourcesOptions) {
  const r = await resolveInRoot(root, rel, { followFinal: true, mode: opts.mode, displayPath: display });
  try {
    const st = await lstat(r.hostPath);
    return { ...r, isDir: st.isDirectory(), exists: true };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ...r, isDir: false, exists: false };
    throw e;
  }
}

async function resolveOne(root: string, pattern: string, opts: ResolveSourcesOptions): Promise<ResolvedSource[]> {
  const rel = cleanSourcePath(pattern);
  const { fixed, wild } = splitWildcards(rel);
  const excludes = opts.excludes.length > 0 ? createMatcher(parsePatternList(opts.excludes)) : undefined;
  if (wild.length === 0) {
    const relPath = fixed.length === 0 ? '.' : fixed.join('/');
    const f = await follow(root, relPath, pattern, opts);
    if (!f.exists) throw notFound(pattern);
    if (isIgnored(opts.ignore, relPath, f.isDir) || isIgnored(opts.ignore, f.rel, f.isDir)) {
      throw notFound(pattern, ' (it is excluded by .dockerignore)');
    }
    return [{ kind: 'path', relPath, hostPath: f.hostPath, resolvedRel: f.rel || '.', isDir: f.isDir }];
  }
  const base = await follow(root, fixed.join('/'), pattern, opts);
  if (!base.exists || !base.isDir) return emptyOrError(pattern, opts);
  // Walk component by component; like fsutil's walk, intermediate symlinks are not traversed.
  let level: { rel: string; host: string }[] = [{ rel: '', host: base.hostPath }];
  for (let i = 0; i < wild.length; i++) {
    const comp = wild[i]!;
    const last = i === wild.length - 1;
    const next: { rel: string; host: string }[] = [];
    for (const dir of level) {
      opts.signal?.throwIfAborted();
      const names = (await readdir(dir.host)).sort(compareBytes);
      for (const name of names) {
        if (!goMatch(comp, name)) continue;
        const host = path.join(dir.host, name);
        if (!last) {
          const st = await lstat(host);
          if (!st.isDirectory()) continue;
        }
        next.push({ rel: dir.rel === '' ? name : `${dir.rel}/${name}`, host });
      }
    }
    level = next;
  }
  const out: ResolvedSource[] = [];
  const fixedRel = fixed.join('/');
  for (const m of level) {
    const relPath = fixedRel === '' ? m.rel : `${fixedRel}/${m.rel}`;
    if (excludes?.matches(m.rel)) continue;
    // Wildcard matches that are links are followed too, still only inside the tree.
    const f = await follow(root, path.posix.join(base.rel, m.rel), relPath, opts);
    if (!f.exists) continue;
    if (isIgnored(opts.ignore, relPath, f.isDir) || isIgnored(opts.ignore, f.rel, f.isDir)) continue;
    out.push({ kind: 'path', relPath, hostPath: f.hostPath, resolvedRel: f.rel || '.', isDir: f.isDir });
  }
  if (out.length === 0) return emptyOrError(pattern, opts);
  return out;
}

function emptyOrError(pattern: string, opts: ResolveSourcesOptions): ResolvedSource[] {
  if (opts.allowEmptyWildcard) return [];
  throw new StowageError('copy/no-match', `no source files were specified: "${pattern}" matches nothing`);
}

/** Go's string order is byte order; JS's default sort is UTF-16 order. */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * `COPY --parents`: the pattern's path (after an optional `/./` pivot) is kept under the
 * destination. Patterns match like `.dockerignore` patterns (`**`, parent directories).
 */
async function resolveParents(root: string, raw: string, opts: ResolveSourcesOptions): Promise<ResolvedSource[]> {
  const pivot = raw.indexOf('/./');
  const baseRaw = pivot >= 0 ? raw.slice(0, pivot) : '';
  const baseRel = cleanSourcePath(baseRaw);
  const patternRel = cleanSourcePath(pivot >= 0 ? raw.slice(pivot + 3) : raw);
  const base = await follow(root, baseRel, raw, opts);
  if (!base.exists || !base.isDir) throw notFound(raw);
  const hasWild = patternRel.split('/').some(containsWildcards);
  const excludes = opts.excludes.length > 0 ? createMatcher(parsePatternList(opts.excludes)) : undefined;
  const baseTreeRel = base.rel;
  const treeRel = (rel: string) => (baseTreeRel === '' ? rel : `${baseTreeRel}/${rel}`);
  const mk = (rel: string, host: string, isDir: boolean): ResolvedSource => ({
    kind: 'path',
    relPath: baseRel === '.' ? rel : `${baseRel}/${rel}`,
    hostPath: host,
    resolvedRel: treeRel(rel),
    isDir,
    parentsPath: rel,
    parentsBase: baseTreeRel === '' ? '.' : baseTreeRel,
  });

  if (!hasWild) {
    const relPath = patternRel;
    if (relPath === '.') {
      return [mk('.', base.hostPath, true)];
    }
    // The named path is kept as written; only its final link is followed, inside the tree.
    const f = await follow(root, treeRel(unescapeAll(relPath)), raw, opts);
    if (!f.exists) throw notFound(raw);
    if (isIgnored(opts.ignore, treeRel(unescapeAll(relPath)), f.isDir)) {
      throw notFound(raw, ' (it is excluded by .dockerignore)');
    }
    return [{ ...mk(unescapeAll(relPath), f.hostPath, f.isDir), resolvedRel: f.rel || '.' }];
  }

  const include = createMatcher(parsePatternList([patternRel]));
  const patComps = patternRel.split('/');
  const out: ResolvedSource[] = [];
  const walk = async (dirHost: string, dirRel: string): Promise<void> => {
    opts.signal?.throwIfAborted();
    const names = (await readdir(dirHost)).sort(compareBytes);
    for (const name of names) {
      const rel = dirRel === '' ? name : `${dirRel}/${name}`;
      const host = path.join(dirHost, name);
      const st = await lstat(host);
      const isDir = st.isDirectory();
      if (isIgnored(opts.ignore, treeRel(rel), isDir)) continue;
      if (excludes?.matches(rel) && !(isDir && excludes.mayHaveExceptionsUnder(rel))) continue;
      if (include.matches(rel)) {
        out.push(mk(rel, host, isDir));
        continue;
      }
      if (isDir && couldMatchBelow(patComps, rel.split('/'))) await walk(host, rel);
    }
  };
  await walk(base.hostPath, '');
  if (out.length === 0 && !opts.allowEmptyWildcard) {
    throw new StowageError('copy/no-match', `no source files were specified: "${raw}" matches nothing`);
  }
  return out;
}

function unescapeAll(rel: string): string {
  return rel
    .split('/')
    .map((c) => unescapeLiteral(c))
    .join('/');
}

/** Whether something below directory `dir` could match the component pattern `pat`. */
export function couldMatchBelow(pat: readonly string[], dir: readonly string[]): boolean {
  for (let i = 0; i < dir.length; i++) {
    const p = pat[i];
    if (p === undefined) return false;
    if (p.includes('**')) return true;
    if (!goMatch(p, dir[i]!)) return false;
  }
  return pat.length > dir.length;
}
