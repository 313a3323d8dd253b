/**
 * The portable snapshotter: the stage gets a private copy of its lowers (copied, reflinked where
 * the filesystem can, never hardlinked — a step may modify files in place), and each snapshot diffs
 * a stat index (type, mode, owner, size, mtime, ctime, inode, birth time) against the previous one.
 * ctime catches what mtime alone cannot (chmod/chown/xattr changes, mtimes restored by `touch -r`),
 * so stat always decides and no content is hashed.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { StowageError } from '../../util/errors.js';
import { ancestorsOf, type ChangeEntry, type ChangeSet } from '../layer/changeset.js';
import { XattrReader, readXattrs } from '../layer/fs-helper.js';
import { ignoreSet, isMountPointArtifact, isOverlayWhiteout, lstatRec, scanTree, toChangeEntry, underIgnored } from './scan.js';
import { REC_INO, diffPacked, dirBirth, findAvailable, forEachRecord, recordField, scanPacked, type IndexScanOptions, type IndexScanner, type PackedIndex } from './stat-index.js';
import { DEFAULT_IGNORE, type LowerDir, type PrepareOptions, type Rootfs, type SnapshotOptions, type Snapshotter, type SnapshotterOptions } from './types.js';

class WalkRootfs implements Rootfs {
  readonly kind = 'walk' as const;
  index: PackedIndex = { records: Buffer.alloc(0), dirBirths: new Map() };
  released = false;
  /** One xattr helper process for all of this rootfs' snapshots. */
  readonly xattrs = new XattrReader();
  constructor(
    readonly owner: WalkSnapshotter,
    readonly path: string,
    readonly workDir: string,
    readonly ignore: ReadonlySet<string>,
    readonly scanner: IndexScanner,
  ) {}
  snapshot(options?: SnapshotOptions): Promise<ChangeSet> {
    return this.owner.snapshot(this, options);
  }
  async ready(): Promise<void> {}
  async settle(): Promise<void> {}
  release(): Promise<void> {
    return this.owner.release(this);
  }
}

/** The host path of `rel` under `root` if no ancestor is a symlink or non-directory (never leave the root). */
export function safeHostPath(root: string, rel: string): string | undefined {
  if (rel.split('/').some((c) => c === '..' || c === '.' || c === '')) return undefined;
  for (const a of ancestorsOf(rel)) {
    const r = lstatRec(`${root}/${a}`);
    if (r === undefined || r.type !== 'dir') return undefined;
  }
  return `${root}/${rel}`;
}

export async function copyTree(src: string, dst: string, signal?: AbortSignal): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    // GNU cp keeps hardlinks, xattrs, ownership and nanosecond times, and reflinks where it can.
    const child = spawn('cp', ['-a', '--reflink=auto', '--', `${src}/.`, dst], { stdio: ['ignore', 'ignore', 'pipe'], signal });
    const err: Buffer[] = [];
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new StowageError('snapshot/copy-failed', `copying layer ${src} into the rootfs failed: ${Buffer.concat(err).toString().trim()}`)),
    );
  });
}

/**
 * Deletes a work dir without blocking the event loop (a 100k-file rootfs takes seconds), and never
 * crosses into another filesystem (a mount left behind inside must not be emptied).
 */
export async function removeTree(path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('rm', ['-rf', '--one-file-system', '--', path], { stdio: ['ignore', 'ignore', 'pipe'] });
    const err: Buffer[] = [];
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new StowageError('snapshot/cleanup-failed', `cannot remove ${path}: ${Buffer.concat(err).toString().trim()}`))));
  });
}

/**
 * Removes a work dir without making anyone wait for it: the dir is renamed out of the way at once
 * (so its name is free and nothing can mistake it for a live rootfs) and a detached `rm` deletes it
 * after this process may already have exited — a 100k-file rootfs takes seconds to minutes to delete
 * and must not delay the build's exit. Falls back to waiting when it cannot be renamed.
 */
export async function discardTree(path: string): Promise<void> {
  const trash = join(dirname(path), `.stowage-trash-${basename(path)}-${randomBytes(4).toString('hex')}`);
  try {
    renameSync(path, trash);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    return removeTree(path);
  }
  const child = spawn('rm', ['-rf', '--one-file-system', '--', trash], { stdio: 'ignore', detached: true });
  child.on('error', () => rmSync(trash, { recursive: true, force: true }));
  child.unref();
}

/** Makes (or checks) a rootfs work dir. */
export function makeWorkDir(given: string | undefined, workRoot: string | undefined, kind: string): string {
  if (given !== undefined) {
    mkdirSync(given, { recursive: true });
    if (readdirSync(given).length > 0) throw new StowageError('snapshot/workdir-not-empty', `rootfs work dir ${given} is not empty`);
    return given;
  }
  const root = workRoot ?? tmpdir();
  mkdirSync(root, { recursive: true });
  return mkdtempSync(join(root, `${kind}-`));
}

/**
 * A lower's whiteouts: as given, else from the `<dir>.meta.json` the unpacked-layer store writes
 * beside each layer, else from overlay-format markers in the tree.
 */
export async function describeLower(lower: string | LowerDir, signal?: AbortSignal): Promise<LowerDir> {
  if (typeof lower !== 'string') return lower;
  return readLowerMeta(lower) ?? describeOverlayLower(lower, signal);
}

/** The sidecar `<dir>.meta.json` ({whiteouts, opaqueDirs}) of an unpacked layer dir, if any. */
export function readLowerMeta(path: string): LowerDir | undefined {
  try {
    const meta = JSON.parse(readFileSync(`${path.replace(/\/+$/, '')}.meta.json`, 'utf8')) as { whiteouts?: string[]; opaqueDirs?: string[] };
    return { path, whiteouts: meta.whiteouts ?? [], opaqueDirs: meta.opaqueDirs ?? [] };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Whiteouts and opaque dirs of a bare overlay-format lower dir (char 0/0, trusted.overlay.opaque). */
export async function describeOverlayLower(path: string, signal?: AbortSignal): Promise<Required<LowerDir>> {
  const tree = scanTree(path);
  const whiteouts: string[] = [];
  const dirs: string[] = [];
  for (const [rel, r] of tree) {
    if (isOverlayWhiteout(r)) whiteouts.push(rel);
    else if (r.type === 'dir') dirs.push(rel);
  }
  const opaqueDirs: string[] = [];
  if (dirs.length > 0) {
    const { xattrs } = await readXattrs(dirs.map((d) => `${path}/${d}`), signal);
    for (const d of dirs) {
      const x = xattrs.get(`${path}/${d}`);
      const v = x?.['trusted.overlay.opaque'] ?? x?.['user.overlay.opaque'];
      if (v !== undefined && Buffer.from(v).toString() === 'y') opaqueDirs.push(d);
    }
  }
  return { path, whiteouts, opaqueDirs };
}

/**
 * Removes from `root` whatever the lower will replace with a different kind of file, descending only
 * where both sides have a directory (elsewhere cp creates everything fresh).
 */
function removeConflicts(lower: string, root: string, rel: string): void {
  for (const name of readdirSync(rel === '' ? lower : `${lower}/${rel}`)) {
    const childRel = rel === '' ? name : `${rel}/${name}`;
    const l = lstatRec(`${lower}/${childRel}`);
    const r = lstatRec(`${root}/${childRel}`);
    if (l === undefined || r === undefined) continue;
    if (l.type === 'dir' && r.type === 'dir') removeConflicts(lower, root, childRel);
    else rmSync(`${root}/${childRel}`, { recursive: true, force: true });
  }
}

export class WalkSnapshotter implements Snapshotter {
  readonly kind = 'walk' as const;
  readonly name = 'walk';
  private scanner: Promise<IndexScanner> | undefined;
  constructor(private readonly options: SnapshotterOptions = {}) {}

  /** GNU find where it runs, else the Node walk; probed once per snapshotter. */
  private indexScanner(signal?: AbortSignal): Promise<IndexScanner> {
    if (this.options.indexScanner !== undefined) return Promise.resolve(this.options.indexScanner);
    this.scanner ??= findAvailable(signal).then((ok) => (ok ? 'find' : 'node'));
    return this.scanner;
  }

  async prepare(options: PrepareOptions): Promise<Rootfs> {
    const workDir = makeWorkDir(options.workDir, this.options.workRoot, 'walk');
    const path = `${workDir}/rootfs`;
    mkdirSync(path, { mode: 0o755 });
    try {
      const rootfs = new WalkRootfs(this, path, workDir, ignoreSet(options.ignore ?? DEFAULT_IGNORE), await this.indexScanner(options.signal));
      await this.fill(path, options);
      const scanOptions: IndexScanOptions = { noDescend: rootfs.ignore, scratchFile: `${workDir}/index.tmp` };
      if (options.signal) scanOptions.signal = options.signal;
      const index = await scanPacked(path, rootfs.scanner, scanOptions);
      // Every directory's birth time, once; later snapshots look up only the ones that changed.
      forEachRecord(index, (rel, rec) => {
        if (rec.charCodeAt(0) === 100 /* d */ && !index.dirBirths.has(rel)) index.dirBirths.set(rel, dirBirth(path, rel));
      });
      rootfs.index = index;
      rootfs.xattrs.start(); // its startup overlaps the first step
      return rootfs;
    } catch (e) {
      rmSync(workDir, { recursive: true, force: true });
      throw e;
    }
  }

  private async fill(path: string, options: PrepareOptions): Promise<void> {
    let first = true;
    for (const lower of options.lowers) {
      options.signal?.throwIfAborted();
      const ld = await describeLower(lower, options.signal);
      if (!first) {
        removeConflicts(ld.path, path, '');
        for (const d of ld.opaqueDirs ?? []) {
          const host = safeHostPath(path, d);
          const r = host === undefined ? undefined : lstatRec(host);
          if (host !== undefined && r?.type === 'dir') for (const c of readdirSync(host)) rmSync(`${host}/${c}`, { recursive: true, force: true });
        }
        for (const w of ld.whiteouts ?? []) {
          const host = safeHostPath(path, w);
          if (host !== undefined) rmSync(host, { recursive: true, force: true });
        }
      }
      await copyTree(ld.path, path, options.signal);
      // Overlay-format lowers carry their whiteouts as char 0/0 nodes; they are markers, not files.
      for (const w of ld.whiteouts ?? []) {
        const host = safeHostPath(path, w);
        const r = host === undefined ? undefined : lstatRec(host);
        if (host !== undefined && r !== undefined && isOverlayWhiteout(r)) unlinkSync(host);
      }
      first = false;
    }
  }

  async snapshot(rootfs: Rootfs, options: SnapshotOptions = {}): Promise<ChangeSet> {
    const rf = asWalk(rootfs);
    const ignore = ignoreSet([...rf.ignore], options.ignore);
    const scanOptions: IndexScanOptions = { noDescend: ignore, scratchFile: `${rf.workDir}/index.tmp` };
    if (options.signal) scanOptions.signal = options.signal;
    // The scan may list what lies inside ignored paths (find does); that is dropped below.
    const now = await scanPacked(rf.path, rf.scanner, scanOptions);
    const old = rf.index;
    const diff = diffPacked(old, now);
    // Births: unchanged directories keep theirs; changed and new ones are looked up (the Node walk
    // already has them all).
    const births = new Map(old.dirBirths);
    for (const d of diff.deleted) births.delete(d);
    const changed: string[] = [];
    const opaqueDirs: string[] = [];
    for (const { path: rel, rec, old: o } of diff.changed) {
      const isDir = rec.charCodeAt(0) === 100; /* d */
      if (isDir) births.set(rel, now.dirBirths.get(rel) ?? dirBirth(rf.path, rel));
      else births.delete(rel);
      const ig = underIgnored(rel, ignore);
      if (ig === 'inside') continue;
      if (ig === 'self') {
        // An ignored directory's only changes come from its (ignored) contents or from being a mount point.
        if (isDir) continue;
        if (o === undefined) {
          const r = lstatRec(`${rf.path}/${rel}`);
          if (r === undefined || isMountPointArtifact(`${rf.path}/${rel}`, r)) continue;
        }
      }
      changed.push(rel);
      // A directory that replaced something else hides all of it (as overlayfs marks it opaque).
      if (o !== undefined && isDir && (o.charCodeAt(0) !== 100 || recordField(o, REC_INO) !== recordField(rec, REC_INO) || old.dirBirths.get(rel) !== births.get(rel))) {
        opaqueDirs.push(rel);
      }
    }
    const deletions = diff.deleted.filter((rel) => underIgnored(rel, ignore) !== 'inside');
    const gone = new Set(diff.deleted);
    const paths = new Set(changed);
    for (const p of [...changed, ...deletions]) for (const a of ancestorsOf(p)) paths.add(a);
    const entries = await entriesFor(rf.path, [...paths].filter((p) => !gone.has(p)), options.signal, rf.xattrs);
    rf.index = { records: now.records, dirBirths: births };
    return { entries, deletions, opaqueDirs };
  }

  async release(rootfs: Rootfs): Promise<void> {
    const rf = asWalk(rootfs);
    rf.released = true;
    rf.xattrs.close();
    await discardTree(rf.workDir);
  }
}

/**
 * Change-set entries for existing paths under `root`: full stat (exact ns times, rdev) only for
 * these, xattrs read in one batch.
 */
export async function entriesFor(root: string, paths: readonly string[], signal?: AbortSignal, reader?: XattrReader): Promise<ChangeEntry[]> {
  const hostPaths = paths.map((p) => `${root}/${p}`);
  const { xattrs } = await (reader ? reader.read(hostPaths, signal) : readXattrs(hostPaths, signal));
  const out: ChangeEntry[] = [];
  for (const p of paths) {
    const host = `${root}/${p}`;
    const r = lstatRec(host);
    if (r === undefined) continue;
    const e = toChangeEntry(p, host, r, xattrs.get(host));
    if (e) out.push(e);
  }
  return out;
}

function asWalk(r: Rootfs): WalkRootfs {
  if (!(r instanceof WalkRootfs)) throw new StowageError('snapshot/wrong-rootfs', 'this rootfs was not prepared by the walk snapshotter');
  if (r.released) throw new StowageError('snapshot/released', 'this rootfs was already released');
  return r;
}
