/**
 * COPY (and ADD's plain-copy part) into a stage's rootfs directory, per DOCKERFILE.md A10.
 * Every write is resolved inside the rootfs (see in-root.ts); files are written under a temp
 * name and renamed, so an interrupted copy never leaves a partial file under a real name.
 *
 * Extended attributes are copied best effort for `--from` sources (see xattrs.ts and the note at
 * the call). `--link` is an ordinary copy here: the layer is the diff either way.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, constants as fsConstants, copyFileSync, lchownSync, lstatSync, lutimesSync, rmSync as rmFileSync, utimesSync, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { StowageError } from '../../util/errors.js';
import { createMatcher, parsePatternList, type IgnoreMatcher } from '../context/dockerignore.js';
import { compareBytes, resolveSourcesIn, type InlineSource, type ResolvedSource } from '../context/resolve.js';
import { parseChmod, type ChmodFn } from './chmod.js';
import { canonicalRoot, mkdirAllInRoot, resolveInRoot, type InRootPath } from './in-root.js';
import { applyXattrs, type XattrOp } from './xattrs.js';

export type { InlineSource, ResolvedSource } from '../context/resolve.js';
export type CopySource = ResolvedSource | InlineSource;

export interface Owner {
  uid: number;
  gid: number;
}

export interface CopyOptions {
  /** The stage's root filesystem directory; nothing outside it is written. */
  rootfs: string;
  /** Where sources come from: the context directory, or another stage's rootfs for `--from`. */
  sourceRoot: string;
  /** Already resolved sources (BuildContext.resolveSources, heredocs), or raw source arguments. */
  sources: readonly CopySource[] | readonly string[];
  /** Destination as written (after variable expansion); a trailing `/` matters. */
  dest: string;
  /** The stage's WORKDIR, for relative destinations. */
  workdir: string;
  /** `--chown`, already resolved against the stage's passwd/group. */
  chown?: Owner;
  /** `--chmod`: octal or symbolic. */
  chmod?: string;
  parents: boolean;
  excludes: readonly string[];
  /** `--link`: same files; this builder snapshots the diff either way. */
  link: boolean;
  /** Top-level source symlinks are always followed (inside the source tree). */
  followTopLevelSymlinks?: true;
  /** Sources from the build context: owner 0:0 unless chown; `--from` keeps owners. */
  fromContext: boolean;
  /** `.dockerignore` of the context (only when fromContext). */
  ignore?: IgnoreMatcher;
  signal: AbortSignal;
}

export interface CopyResult {
  /** Absolute in-rootfs paths of what each source became at the top level. */
  paths: string[];
}

/** Destination path made absolute against WORKDIR; `isDir` if it names a directory by its slash. */
export function resolveDest(dest: string, workdir: string): { path: string; isDir: boolean } {
  let d = dest === '' || dest === '.' ? './' : dest;
  const isDir = d.endsWith('/') || d.endsWith('/.');
  if (!d.startsWith('/')) d = path.posix.join(workdir.startsWith('/') ? workdir : '/' + workdir, d);
  return { path: path.posix.normalize('/' + d).replace(/(.)\/+$/, '$1'), isDir };
}

const tmpName = (dir: string) => path.join(dir, `.stowage-tmp-${randomBytes(6).toString('hex')}`);

interface Run {
  root: string;
  sourceRoot: string;
  chmodFn: ChmodFn | undefined;
  opts: CopyOptions;
  excludes: IgnoreMatcher | undefined;
  /** Source (dev:ino) → host path of its first copy, to keep hardlinks. */
  inodes: Map<string, string>;
  parentDirs: { mode: number; uid: number; gid: number };
  /** Applied once at the end, after owners and modes are final. */
  xattrs: XattrOp[];
}

export async function copyIntoRootfs(opts: CopyOptions): Promise<CopyResult> {
  // Validate everything before the first write.
  const chmodFn = opts.chmod !== undefined ? parseChmod(opts.chmod) : undefined;
  const root = await canonicalRoot(opts.rootfs);
  const sourceRoot = await canonicalRoot(opts.sourceRoot);
  const sources: CopySource[] = isPatternList(opts.sources)
    ? await resolveSourcesIn(sourceRoot, opts.sources, {
        allowEmptyWildcard: true,
        parents: opts.parents,
        excludes: opts.excludes,
        ...(opts.fromContext && opts.ignore ? { ignore: opts.ignore } : {}),
        mode: opts.fromContext ? 'contained' : 'chroot',
        signal: opts.signal,
      })
    : [...opts.sources];
  const run: Run = {
    root,
    sourceRoot,
    chmodFn,
    opts,
    excludes: opts.excludes.length > 0 ? createMatcher(parsePatternList(opts.excludes)) : undefined,
    inodes: new Map(),
    parentDirs: {
      mode: chmodFn ? chmodFn(0o755, true) : 0o755,
      uid: opts.chown?.uid ?? 0,
      gid: opts.chown?.gid ?? 0,
    },
    xattrs: [],
  };
  const dest = resolveDest(opts.dest, opts.workdir);
  const paths: string[] = [];
  for (const src of sources) {
    opts.signal.throwIfAborted();
    paths.push(await copyOne(run, src, dest));
  }
  // Only for `--from` trees (stages and images, where setcap binaries live): a checkout carries
  // no xattrs worth keeping (git stores none; a host's SELinux labels must not leak into images),
  // and the batch costs a python3 start per step.
  if (!opts.fromContext) await applyXattrs(run.xattrs, opts.signal);
  return { paths };
}

function isPatternList(s: readonly CopySource[] | readonly string[]): s is readonly string[] {
  return s.length > 0 && typeof s[0] === 'string';
}

function mkdirAll(run: Run, p: string): Promise<InRootPath> {
  return mkdirAllInRoot(run.root, p, {
    ...run.parentDirs,
    mkdir: fs.mkdir,
    chown: fs.chown,
    chmod: fs.chmod,
  });
}

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

const abs = (rel: string) => '/' + rel;

async function copyOne(run: Run, src: CopySource, dest: { path: string; isDir: boolean }): Promise<string> {
  if (src.kind === 'inline') return copyInline(run, src, dest);
  const st = await fs.lstat(src.hostPath);
  if (src.parentsPath !== undefined) return copyWithParents(run, src, st, dest);
  const exclRoot = '';
  if (dest.isDir) {
    const dir = await mkdirAll(run, dest.path);
    if (st.isDirectory()) {
      await copyTree(run, src.hostPath, src.resolvedRel, exclRoot, dir);
      return abs(dir.rel);
    }
    const name = path.posix.basename(src.relPath);
    await copyEntry(run, src.hostPath, st, src.resolvedRel, name, dir, name, false);
    return abs(path.posix.join(dir.rel, name));
  }
  await mkdirAll(run, path.posix.dirname(dest.path));
  const target = await resolveInRoot(run.root, dest.path, { followFinal: true });
  const tst = await lstatOrUndefined(target.hostPath);
  if (st.isDirectory()) {
    if (tst !== undefined && !tst.isDirectory()) {
      throw new StowageError('copy/not-a-directory', `cannot copy to non-directory: ${abs(target.rel)}`, {
        hint: 'the destination exists as a file; copy into another path or remove the file first',
      });
    }
    const parent = await mkdirAll(run, path.posix.dirname(target.rel));
    const name = path.posix.basename(target.rel);
    // The top destination directory keeps its metadata if it existed (overwriteMeta=false).
    await copyEntry(run, src.hostPath, st, src.resolvedRel, exclRoot, parent, name, false);
    return abs(target.rel);
  }
  if (tst?.isDirectory()) {
    // A file onto an existing directory goes inside it.
    const name = path.posix.basename(src.relPath);
    await copyEntry(run, src.hostPath, st, src.resolvedRel, name, target, name, false);
    return abs(path.posix.join(target.rel, name));
  }
  const parent = await mkdirAll(run, path.posix.dirname(target.rel));
  const name = path.posix.basename(target.rel);
  await copyEntry(run, src.hostPath, st, src.resolvedRel, name, parent, name, false);
  return abs(target.rel);
}

async function copyInline(run: Run, src: InlineSource, dest: { path: string; isDir: boolean }): Promise<string> {
  if (src.name.includes('/') || src.name === '' || src.name === '.' || src.name === '..') {
    throw new StowageError('copy/bad-heredoc-name', `invalid heredoc file name "${src.name}"`);
  }
  let dir: InRootPath;
  let name: string;
  if (dest.isDir) {
    dir = await mkdirAll(run, dest.path);
    name = src.name;
  } else {
    await mkdirAll(run, path.posix.dirname(dest.path));
    const target = await resolveInRoot(run.root, dest.path, { followFinal: true });
    const tst = await lstatOrUndefined(target.hostPath);
    if (tst?.isDirectory()) {
      dir = target;
      name = src.name;
    } else {
      dir = await mkdirAll(run, path.posix.dirname(target.rel));
      name = path.posix.basename(target.rel);
    }
  }
  const target = path.join(dir.hostPath, name);
  const tst = await lstatOrUndefined(target);
  if (tst?.isDirectory()) throw cannotOverwriteDir(path.posix.join(dir.rel, name));
  const tmp = tmpName(dir.hostPath);
  try {
    await fs.writeFile(tmp, src.content, { flag: 'wx', mode: 0o600, signal: run.opts.signal });
    const owner = run.opts.chown ?? { uid: 0, gid: 0 };
    await fs.lchown(tmp, owner.uid, owner.gid);
    await fs.chmod(tmp, run.chmodFn ? run.chmodFn(0o644, false) : 0o644);
    await fs.rename(tmp, target);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  return abs(path.posix.join(dir.rel, name));
}

/** `--parents`: recreate the source's path (below the pivot) under the destination directory. */
async function copyWithParents(
  run: Run,
  src: ResolvedSource,
  st: Stats,
  dest: { path: string; isDir: boolean },
): Promise<string> {
  const destDir = await mkdirAll(run, dest.path);
  const rel = src.parentsPath!;
  if (rel === '.') {
    await copyTree(run, src.hostPath, src.resolvedRel, '', destDir);
    return abs(destDir.rel);
  }
  // Intermediate directories are created like copied directories: with their source metadata.
  const comps = rel.split('/');
  let parent = destDir;
  for (let i = 0; i < comps.length - 1; i++) {
    const sub = comps.slice(0, i + 1).join('/');
    const host = path.join(parent.hostPath, comps[i]!);
    const existing = await lstatOrUndefined(host);
    if (existing === undefined) {
      const srcDir = await resolveInRoot(run.sourceRoot, path.posix.join(src.parentsBase ?? '.', sub), {
        followFinal: true,
        mode: run.opts.fromContext ? 'contained' : 'chroot',
      });
      const sst = await fs.lstat(srcDir.hostPath);
      await fs.mkdir(host, 0o700);
      applyMeta(run, host, sst, 'dir');
      parent = { hostPath: host, rel: path.posix.join(parent.rel, comps[i]!) };
    } else if (existing.isDirectory()) {
      parent = { hostPath: host, rel: path.posix.join(parent.rel, comps[i]!) };
    } else {
      parent = await mkdirAll(run, path.posix.join(parent.rel, comps[i]!));
    }
  }
  const name = comps[comps.length - 1]!;
  await copyEntry(run, src.hostPath, st, src.resolvedRel, rel, parent, name, true);
  return abs(path.posix.join(parent.rel, name));
}

function cannotOverwriteDir(rel: string): StowageError {
  return new StowageError('copy/not-a-directory', `cannot overwrite directory ${abs(rel)} with a non-directory`, {
    hint: 'remove the directory in an earlier step or copy to another path',
  });
}

type MetaKind = 'dir' | 'file' | 'symlink' | 'special';

/** Context files belong to root unless --chown says otherwise; --from trees keep their owners. */
function ownerOf(run: Run, st: Stats): { uid: number; gid: number } {
  return run.opts.chown ?? (run.opts.fromContext ? { uid: 0, gid: 0 } : { uid: st.uid, gid: st.gid });
}

/** Owner, mode and times of a copied entry: synchronous, as a few microseconds each are cheaper than a threadpool round trip. */
function applyMeta(run: Run, host: string, st: Stats, kind: MetaKind): void {
  const owner = ownerOf(run, st);
  lchownSync(host, owner.uid, owner.gid);
  if (kind === 'symlink') {
    lutimesSync(host, st.atime, st.mtime);
    return;
  }
  const mode = st.mode & 0o7777;
  // After chown, which clears setuid/setgid.
  chmodSync(host, run.chmodFn ? run.chmodFn(mode, kind === 'dir') : mode);
  utimesSync(host, st.atime, st.mtime);
}

/**
 * Copies the contents of source directory `srcHost` into the existing directory `target`
 * (lazily created by `ensureTarget` for directories walked only for exceptions).
 * `ctxRel` is the tree-relative path (for .dockerignore), `exclRel` the source-relative one.
 */
async function copyTree(
  run: Run,
  srcHost: string,
  ctxRel: string,
  exclRel: string,
  target: InRootPath | (() => Promise<InRootPath>),
): Promise<void> {
  const ignore = run.opts.fromContext ? run.opts.ignore : undefined;
  const names = (await fs.readdir(srcHost)).sort(compareBytes);
  // Synchronously (see the plain-file loop below): a stat is a few microseconds, a round trip
  // through the threadpool more.
  const stats = names.map((name) => lstatSync(path.join(srcHost, name)));
  const getParent = () => (typeof target === 'function' ? target() : Promise.resolve(target));
  // Files with a single link are independent of each other: copied last, in synchronous batches;
  // directories, links and hardlinked files go first, in order.
  const plainFiles: { name: string; st: Stats; ctx: string; excl: string }[] = [];
  for (let i = 0; i < names.length; i++) {
    run.opts.signal.throwIfAborted();
    const name = names[i]!;
    const st = stats[i]!;
    const childHost = path.join(srcHost, name);
    const childCtx = ctxRel === '.' || ctxRel === '' ? name : `${ctxRel}/${name}`;
    const childExcl = exclRel === '' ? name : `${exclRel}/${name}`;
    const ignored = ignore?.matches(childCtx) ?? false;
    const excluded = run.excludes?.matches(childExcl) ?? false;
    if (ignored || excluded) {
      const walk =
        st.isDirectory() &&
        (!ignored || ignore!.mayHaveExceptionsUnder(childCtx)) &&
        (!excluded || run.excludes!.mayHaveExceptionsUnder(childExcl));
      if (!walk) continue;
      // Walk it, creating the directory only if something below is included.
      let created: Promise<InRootPath> | undefined;
      const ensure = (): Promise<InRootPath> => {
        created ??= getParent().then((parent) => ensureDir(run, parent, name));
        return created;
      };
      await copyTree(run, childHost, childCtx, childExcl, ensure);
      if (created) applyMeta(run, (await created).hostPath, st, 'dir');
      continue;
    }
    if (st.isFile() && st.nlink === 1) {
      plainFiles.push({ name, st, ctx: childCtx, excl: childExcl });
      continue;
    }
    await copyEntry(run, childHost, st, childCtx, childExcl, await getParent(), name, true);
  }
  if (plainFiles.length === 0) return;
  const parent = await getParent();
  for (let i = 0; i < plainFiles.length; i++) {
    // Synchronous batches, handing the event loop back between them (other images' builds and
    // pushes share it). Each file is five syscalls; through fs.promises each cost ~10 us of this
    // thread to queue plus the threadpool's turn — a COPY of 20,000 small files spent ~0.5 s in
    // queueing lstat alone. Sync, the same work is a few microseconds per call.
    if (i % SYNC_BATCH === SYNC_BATCH - 1) await new Promise<void>((resolve) => setImmediate(resolve));
    run.opts.signal.throwIfAborted();
    const f = plainFiles[i]!;
    const src = path.join(srcHost, f.name);
    if (!copyNewFileSync(run, src, f.st, parent, f.name)) await copyEntry(run, src, f.st, f.ctx, f.excl, parent, f.name, true);
  }
}

/** Files copied between two turns of the event loop. */
const SYNC_BATCH = 256;

/**
 * Copies a regular file to `parent/name` when nothing is there yet, synchronously;
 * false (nothing done) when something is, for copyEntry to replace or refuse. COPYFILE_EXCL is
 * O_CREAT|O_EXCL: whatever appears at the name meanwhile, a symlink included, is not written through.
 */
function copyNewFileSync(run: Run, srcHost: string, st: Stats, parent: InRootPath, name: string): boolean {
  const target = path.join(parent.hostPath, name);
  try {
    lstatSync(target);
    return false;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw e;
  }
  copyFileSync(srcHost, target, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
  try {
    applyMeta(run, target, st, 'file');
  } catch (e) {
    rmFileSync(target, { force: true });
    throw e;
  }
  if (!run.opts.fromContext) run.xattrs.push({ kind: 'copy', src: srcHost, dst: target });
  return true;
}

/** The directory `name` in `parent`, created if missing, following an in-root link to a dir. */
async function ensureDir(run: Run, parent: InRootPath, name: string): Promise<InRootPath> {
  const host = path.join(parent.hostPath, name);
  const rel = parent.rel === '' ? name : `${parent.rel}/${name}`;
  const tst = await lstatOrUndefined(host);
  if (tst === undefined) {
    await fs.mkdir(host, 0o700);
    return { hostPath: host, rel };
  }
  if (tst.isDirectory()) return { hostPath: host, rel };
  if (tst.isSymbolicLink()) {
    const r = await resolveInRoot(run.root, rel, { followFinal: true });
    const rst = await lstatOrUndefined(r.hostPath);
    if (rst?.isDirectory()) return r;
  }
  throw new StowageError('copy/not-a-directory', `cannot copy to non-directory: ${abs(rel)}`, {
    hint: 'the destination has a file where the source has a directory',
  });
}

async function copyEntry(
  run: Run,
  srcHost: string,
  st: Stats,
  ctxRel: string,
  exclRel: string,
  parent: InRootPath,
  name: string,
  overwriteMeta: boolean,
): Promise<void> {
  const target = path.join(parent.hostPath, name);
  const targetRel = parent.rel === '' ? name : `${parent.rel}/${name}`;
  if (st.isDirectory()) {
    const tst = await lstatOrUndefined(target);
    const dir = await ensureDir(run, parent, name);
    await copyTree(run, srcHost, ctxRel, exclRel, dir);
    // Created dirs get the source's metadata; existing nested ones too; the top one keeps its own;
    // a directory reached through a link in the rootfs is merged into, not re-moded.
    const followed = tst !== undefined && tst.isSymbolicLink();
    if (!followed && (tst === undefined || overwriteMeta)) {
      applyMeta(run, dir.hostPath, st, 'dir');
      if (!run.opts.fromContext) run.xattrs.push({ kind: 'copy', src: srcHost, dst: dir.hostPath });
    }
    return;
  }
  const tst = await lstatOrUndefined(target);
  if (tst?.isDirectory()) throw cannotOverwriteDir(targetRel);
  const key = `${st.dev}:${st.ino}`;
  const first = st.isFile() && st.nlink > 1 ? run.inodes.get(key) : undefined;
  // Nothing there (the usual case): written in place, without the temp name and rename below
  // (which exist to replace an entry atomically).
  if (st.isFile() && first === undefined && tst === undefined && copyNewFileSync(run, srcHost, st, parent, name)) {
    if (st.nlink > 1) run.inodes.set(key, target);
    return;
  }
  const tmp = tmpName(parent.hostPath);
  try {
    if (st.isFile()) {
      if (first !== undefined && (await lstatOrUndefined(first)) !== undefined) {
        await fs.link(first, tmp);
        await fs.rename(tmp, target);
        return;
      }
      await fs.copyFile(srcHost, tmp, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
      applyMeta(run, tmp, st, 'file');
      await fs.rename(tmp, target);
      if (st.nlink > 1) run.inodes.set(key, target);
      if (!run.opts.fromContext) run.xattrs.push({ kind: 'copy', src: srcHost, dst: target });
    } else if (st.isSymbolicLink()) {
      await fs.symlink(await fs.readlink(srcHost), tmp);
      applyMeta(run, tmp, st, 'symlink');
      await fs.rename(tmp, target);
    } else if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice()) {
      const major = Math.floor(st.rdev / 256) & 0xfff;
      const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
      await mknod(st.isFIFO() ? [tmp, 'p'] : [tmp, st.isCharacterDevice() ? 'c' : 'b', String(major), String(minor)], run.opts.signal);
      applyMeta(run, tmp, st, 'special');
      await fs.rename(tmp, target);
      if (!run.opts.fromContext) run.xattrs.push({ kind: 'copy', src: srcHost, dst: target });
    }
    // Sockets cannot be copied (nor stored in a layer); they are skipped like BuildKit's context transfer does.
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

function mknod(args: string[], signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('mknod', args, { stdio: ['ignore', 'ignore', 'pipe'], signal });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new StowageError('copy/mknod-failed', `mknod failed: ${err.trim()}`)),
    );
  });
}
