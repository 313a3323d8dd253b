/**
 * The build context: a directory (or a tar/tar.gz extracted into a private temp dir, for
 * Kaniko's `--context tar://…`) with its `.dockerignore`, and the only ways to look into it:
 * source resolution that never leaves the directory, and content digests for cache keys.
 */
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { lstat, mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { StowageError } from '../../util/errors.js';
import { canonicalRoot, resolveInRoot } from '../copy/in-root.js';
import { createMatcher, findDockerignore, type IgnoreMatcher } from './dockerignore.js';
import { openDigestMemo, type FileDigestMemo } from '../../cache/digest-memo.js';
import { compareBytes, resolveSourcesIn, type ResolvedSource } from './resolve.js';

export type { ResolvedSource, InlineSource } from './resolve.js';

export interface ContextResolveOptions {
  allowEmptyWildcard: boolean;
  parents: boolean;
  excludes: readonly string[];
  signal?: AbortSignal;
}

export interface BuildContext {
  /** Canonical host path of the context directory. */
  readonly dir: string;
  /** The `.dockerignore` in effect (empty matcher when there is none). */
  readonly ignore: IgnoreMatcher;
  /** The ignore file used, if any. */
  readonly ignoreFile: string | undefined;
  /** COPY/ADD source arguments → entries inside the context (see resolveSourcesIn). */
  resolveSources(patterns: readonly string[], opts: ContextResolveOptions): Promise<ResolvedSource[]>;
  /**
   * sha256 over content and mode of each named path (a directory: its whole non-ignored tree,
   * names, modes, link targets and contents), for step cache keys. Ownership and mtimes are
   * not part of it: context files are copied as 0:0 and checkouts change mtimes.
   */
  fileDigests(relPaths: readonly string[], signal?: AbortSignal): Promise<Map<string, string>>;
  /** Removes what the context owns (the temp dir of a tar context); a no-op for directories. */
  close(): Promise<void>;
}

export interface OpenContextOptions {
  dir: string;
  /** The Dockerfile, whose `<name>.dockerignore` wins over the context's `.dockerignore`. */
  dockerfilePath?: string;
  /** stowage's cache dir: file digests are remembered there between runs (../../cache/digest-memo.ts). */
  cacheDir?: string;
  signal?: AbortSignal;
}

export async function openDirContext(opts: OpenContextOptions): Promise<BuildContext> {
  let dir: string;
  try {
    dir = await canonicalRoot(opts.dir);
    const st = await lstat(dir);
    if (!st.isDirectory()) throw new Error('not a directory');
  } catch (cause) {
    throw new StowageError('context/not-found', `build context ${opts.dir} is not a readable directory`, {
      cause,
      hint: 'pass the directory that holds the files your Dockerfile copies',
    });
  }
  const found = await findDockerignore({
    contextDir: dir,
    ...(opts.dockerfilePath !== undefined ? { dockerfilePath: opts.dockerfilePath } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const memo = opts.cacheDir !== undefined ? openDigestMemo(opts.cacheDir, dir) : undefined;
  return makeContext(dir, createMatcher(found.patterns), found.path, async () => memo?.save(), memo);
}

export interface OpenTarContextOptions {
  /** A tar file, plain or gzip-compressed (detected by content). */
  tarPath: string;
  /** Dockerfile path inside the archive, for `<Dockerfile>.dockerignore`. */
  dockerfileInContext?: string;
  /** Where to make the temp dir (default: the OS temp dir). */
  tmpDir?: string;
  signal: AbortSignal;
}

/** Extracts a tar context into a private temp dir (safely: nothing lands outside it). */
export async function openTarContext(opts: OpenTarContextOptions): Promise<BuildContext> {
  const tmp = await mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), 'stowage-context-'));
  try {
    const { extractTarFile } = await import('../copy/untar.js');
    const root = await canonicalRoot(tmp);
    await extractTarFile({ archivePath: opts.tarPath, root, destRel: '', signal: opts.signal, keepOwners: false });
    const found = await findDockerignore({
      contextDir: root,
      ...(opts.dockerfileInContext !== undefined
        ? { dockerfilePath: path.join(root, opts.dockerfileInContext) }
        : {}),
      signal: opts.signal,
    });
    return makeContext(root, createMatcher(found.patterns), found.path, () => rm(tmp, { recursive: true, force: true }));
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

function makeContext(
  dir: string,
  ignore: IgnoreMatcher,
  ignoreFile: string | undefined,
  close: () => Promise<void>,
  memo?: FileDigestMemo,
): BuildContext {
  return {
    dir,
    ignore,
    ignoreFile,
    resolveSources(patterns, o) {
      return resolveSourcesIn(dir, patterns, { ...o, ignore, mode: 'contained' });
    },
    async fileDigests(relPaths, signal) {
      const out = new Map<string, string>();
      for (const rel of relPaths) {
        const r = await resolveInRoot(dir, rel, { followFinal: true, mode: 'contained', displayPath: rel });
        const h = createHash('sha256');
        await hashTree({ host: r.hostPath, rel: r.rel, h, ignore, memo, signal });
        out.set(rel, 'sha256:' + h.digest('hex'));
      }
      return out;
    },
    close,
  };
}

type Hash = ReturnType<typeof createHash>;

const SMALL_FILE = 256 * 1024;

interface TreeWalk {
  host: string;
  rel: string;
  h: Hash;
  ignore: IgnoreMatcher;
  memo: FileDigestMemo | undefined;
  signal: AbortSignal | undefined;
}

/**
 * Hashes the tree at `host` into `h`: names, modes, link targets and each file's content digest.
 * The walk itself (lstat, readdir, readlink) is synchronous: awaiting one threadpool round trip per
 * entry made a warm rebuild of an image with a 20,000-file context spend ~1 s idle between stat
 * calls. A file's digest comes from the memo when its stat is unchanged; otherwise small files
 * (most of a context) are read in one synchronous read and large ones streamed, so a big file does
 * not hold the event loop for its whole read.
 */
async function hashTree(w: TreeWalk): Promise<void> {
  const { host, rel, h, ignore } = w;
  w.signal?.throwIfAborted();
  const st = lstatSync(host);
  const mode = (st.mode & 0o7777).toString(8);
  if (st.isDirectory()) {
    h.update(`d ${mode}\0`);
    for (const name of readdirSync(host).sort(compareBytes)) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const childHost = path.join(host, name);
      if (ignore.matches(childRel)) {
        const cst = lstatSync(childHost);
        if (!(cst.isDirectory() && ignore.mayHaveExceptionsUnder(childRel))) continue;
      }
      h.update(`n ${name}\0`);
      await hashTree({ ...w, host: childHost, rel: childRel });
    }
    h.update('e\0');
  } else if (st.isSymbolicLink()) {
    h.update(`l ${readlinkSync(host)}\0`);
  } else if (st.isFile()) {
    let hex = w.memo?.get(rel, st);
    if (hex === undefined) {
      const content = createHash('sha256');
      if (st.size <= SMALL_FILE) content.update(readFileSync(host));
      else for await (const chunk of createReadStream(host, w.signal ? { signal: w.signal } : {})) content.update(chunk as Buffer);
      hex = content.digest('hex');
      w.memo?.set(rel, st, hex);
    }
    h.update(`f ${mode} ${st.size} ${hex}\0`);
  } else {
    h.update(`s ${mode} ${st.mode & 0o170000} ${st.rdev}\0`);
  }
}
