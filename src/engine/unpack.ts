/**
 * Safe layer unpacking. A layer is hostile input: every path is resolved component by component
 * inside `targetDir`, symlinks met on the way are followed *within* the root (as if chrooted: an
 * absolute target restarts at the root, `..` stops at it), the last component is never followed,
 * files are created with O_EXCL|O_NOFOLLOW, and names containing `..` are rejected. Nothing outside
 * `targetDir` is created, changed or read through a link.
 *
 * Fast path: plain files are written with synchronous fs calls and no subprocesses; xattrs and
 * nanosecond mtimes are applied in one helper batch at the end (directories after their contents).
 *
 * `--isolation=none` unpacks straight into the container's `/` (Kaniko's model) with two more rules:
 * an `ignore` list of paths the layer may neither write nor delete (mounts, stowage's own files),
 * checked on the path as named *and* as resolved through the layer's symlinks; and `subprocesses:
 * false`, because the host tools (python3, mknod, zstd) may already be the image's own or gone —
 * xattrs are then skipped, mtimes are set through Node (microseconds), device nodes are skipped.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  constants as fsc,
  fchmodSync,
  fchownSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  chmodSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { StowageError, errorMessage, isAbortError } from '../util/errors.js';
import type { Digest } from '../image/digest.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX, joinPath } from './layer/changeset.js';
import { applyMetadata, type MetadataOp } from './layer/fs-helper.js';
import { holdsIgnored, isIgnored } from './build-root/ignore-list.js';
import { removeAroundIgnored } from './build-root/wipe.js';
import { ScopedPath } from './scoped-path.js';
import { readTar } from './layer/tar-reader.js';
import type { TarHeader } from './layer/tar-format.js';

/**
 * How whiteouts in the layer are materialised:
 * - `apply`: delete the named paths from `targetDir` (unpacking onto a full rootfs);
 * - `overlay`: create overlayfs whiteouts (char 0/0) and `trusted.overlay.opaque=y` (an overlay lower);
 * - `record`: only report them (the caller keeps them as data).
 */
export type WhiteoutMode = 'apply' | 'overlay' | 'record';

export interface UnpackOptions {
  signal?: AbortSignal;
  /** Running as (namespace) root: keep ownership, create device nodes, set trusted.* xattrs. */
  asRoot: boolean;
  whiteouts?: WhiteoutMode;
  onWarning?: (message: string) => void;
  /**
   * Relative paths the layer must neither write nor delete, nor anything under them (only with
   * `whiteouts: 'apply'`): the build root's ignore list under --isolation=none.
   */
  ignore?: ReadonlySet<string>;
  /** Default true. false: spawn no helper process (no python3, mknod or zstd); see the module comment. */
  subprocesses?: boolean;
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar (compare with the expected diffId). */
  diffId: Digest;
  /** Paths (relative) the layer deletes. */
  whiteouts: string[];
  /** Directories (relative) whose lower content the layer hides. */
  opaqueDirs: string[];
  warnings: string[];
}

const MAX_SYMLINK_HOPS = 40;
const GUNZIP_CHUNK = 64 * 1024;

/** A layer blob's bytes: a Readable (or any async iterable of chunks), or in-memory chunks. */
export type LayerBytes = AsyncIterable<unknown> | Iterable<Uint8Array>;

type Compression = 'gzip' | 'zstd' | 'none';

function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

async function* prepend(first: Buffer, it: AsyncIterator<unknown> | Iterator<unknown>): AsyncGenerator<Buffer> {
  yield first;
  for (;;) {
    const r = await it.next();
    if (r.done) return;
    yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
  }
}

/** Decompresses gzip (single or multi-member), zstd (through the `zstd` tool) or passes plain tar. */
async function* decompress(source: LayerBytes, signal: AbortSignal | undefined, subprocesses: boolean): AsyncGenerator<Buffer> {
  const it: AsyncIterator<unknown> | Iterator<unknown> = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  const first = await it.next();
  if (first.done) return;
  const head = Buffer.isBuffer(first.value) ? first.value : Buffer.from(first.value as Uint8Array);
  const kind = detectCompression(head);
  const body = prepend(head, it);
  if (kind === 'none') {
    yield* body;
    return;
  }
  if (kind === 'gzip') {
    // 64 KiB output chunks instead of zlib's 16 KiB: a quarter of the trips through the thread pool,
    // the hashing and the tar reader per layer.
    const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK });
    const piping = pipeline(Readable.from(body), gunzip, { signal }).catch((e: unknown) => gunzip.destroy(e as Error));
    try {
      for await (const c of gunzip) yield c as Buffer;
      await piping;
    } catch (e) {
      if (isAbortError(e) || e instanceof StowageError) throw e;
      throw new StowageError('layer/bad-gzip', `the layer's gzip stream is corrupt or truncated: ${errorMessage(e)}`, {
        hint: 'the blob is damaged; delete it from the cache and pull again',
        cause: e,
      });
    }
    return;
  }
  if (!subprocesses) {
    throw new StowageError('unpack/zstd-unsupported', 'this layer is zstd-compressed, and with --isolation=none stowage runs no `zstd` tool (the build root\'s tools are the image\'s)', {
      hint: 'use gzip layers for the base image, or another isolation mode',
    });
  }
  const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'], signal });
  const spawned = new Promise<void>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'ENOENT'
          ? new StowageError('unpack/zstd-unsupported', 'this layer is zstd-compressed and the `zstd` tool is not installed', { hint: 'install zstd (Debian package `zstd`), or use gzip layers' })
          : e,
      ),
    );
    child.on('close', (code) => (code === 0 ? resolve() : reject(new StowageError('unpack/bad-zstd', `zstd failed to decompress the layer (exit ${code})`))));
  });
  spawned.catch(() => {});
  const feeding = pipeline(Readable.from(body), child.stdin).catch(() => {});
  try {
    for await (const c of child.stdout) yield c as Buffer;
  } catch (e) {
    await spawned; // prefer the spawn error (e.g. zstd missing)
    throw e;
  }
  await feeding;
  await spawned;
}

async function* hashed(src: AsyncIterable<Buffer>, hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  for await (const c of src) {
    hash.update(c);
    yield c;
  }
}

function lstatOrUndefined(p: string): Stats | undefined {
  return lstatSync(p, { throwIfNoEntry: false });
}

/** Splits an entry name into safe components, or throws for names that try to leave the root. */
export function entryComponents(name: string): string[] {
  const parts: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      throw new StowageError('unpack/unsafe-path', `layer entry ${JSON.stringify(name)} contains '..'`, {
        hint: 'the layer is malformed or hostile; it was not unpacked',
      });
    }
    if (c.includes('\0')) throw new StowageError('unpack/unsafe-path', `layer entry ${JSON.stringify(name)} contains NUL`);
    parts.push(c);
  }
  return parts;
}

/** `dir/name` without the double slash a root of `/` would give (ignore checks compare exact paths). */
function childPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** What `RootResolver.dir` returns for a directory on the ignore list (never created, never entered). */
const IGNORED = Symbol('ignored');

/** Resolves directories inside one root; the cache is dropped whenever the tree's shape changes. */
class RootResolver {
  private cache = new Map<string, string>();
  constructor(
    private readonly root: string,
    private readonly ignore: ReadonlySet<string> = new Set(),
  ) {}

  /** Root-relative form of a host path under the root (built with `childPath`). */
  rel(host: string): string {
    if (host === this.root) return '';
    const prefix = this.root === '/' ? '/' : `${this.root}/`;
    if (!host.startsWith(prefix) || host.startsWith(`${prefix}/`)) throw new Error(`internal: ${host} is not a normalised path under ${this.root}`);
    return host.slice(prefix.length);
  }

  invalidate(): void {
    this.cache.clear();
  }

  /**
   * The host path of directory `parts`, following symlinks scoped to the root and creating missing
   * directories (0755) on the way. Throws if a component is a non-directory.
   */
  dir(parts: readonly string[], create: boolean): string | typeof IGNORED | undefined {
    const key = parts.join('/');
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const walk = new ScopedPath(parts);
    for (let c = walk.next(); c !== undefined; c = walk.next()) {
      const rel = walk.at(c);
      const p = (this.root === '/' ? '' : this.root) + '/' + rel;
      if (this.ignore.size > 0 && isIgnored(rel, this.ignore)) return IGNORED;
      const st = lstatOrUndefined(p);
      if (st === undefined) {
        if (!create) return undefined;
        mkdirSync(p, { mode: 0o755 });
        walk.enter(c);
        continue;
      }
      if (st.isSymbolicLink()) {
        if (!walk.follow(readlinkSync(p), MAX_SYMLINK_HOPS)) {
          throw new StowageError('unpack/symlink-loop', `too many levels of symbolic links resolving ${JSON.stringify(key)} in the layer`);
        }
        continue;
      }
      if (!st.isDirectory()) {
        throw new StowageError('unpack/not-a-directory', `layer entry path ${JSON.stringify(key)} goes through a non-directory`, {
          hint: 'the layer is malformed or hostile; it was not unpacked',
        });
      }
      walk.enter(c);
    }
    const entered = walk.entered;
    const out = entered === '' ? this.root : (this.root === '/' ? '' : this.root) + '/' + entered;
    this.cache.set(key, out);
    return out;
  }
}

interface DirMeta {
  host: string;
  mode: number;
  uid: number;
  gid: number;
  xattrs: Record<string, Buffer>;
  mtimeNs: bigint;
}

/**
 * Metadata without the python3 helper: mtimes through Node (a double: microseconds survive, the
 * last nanosecond digits may not), xattrs skipped with one warning.
 */
function applyMetadataWithNode(ops: readonly MetadataOp[]): string[] {
  const warnings: string[] = [];
  let skipped = 0;
  for (const o of ops) {
    if (o.xattrs !== undefined && Object.keys(o.xattrs).length > 0) skipped++;
    if (o.mtimeNs === undefined) continue;
    const t = Number(o.mtimeNs / 1000n) / 1e6;
    try {
      lutimesSync(o.path, t, t);
    } catch (err) {
      warnings.push(`cannot set mtime on ${o.path}: ${errorMessage(err)}`);
    }
  }
  if (skipped > 0) warnings.push(`extended attributes of ${skipped} entries were not applied: --isolation=none runs no helper process to set them`);
  return warnings;
}

function mknod(path: string, mode: number, kind: 'c' | 'b' | 'p', major = 0, minor = 0): void {
  const args = ['-m', (mode & 0o7777).toString(8), path, kind];
  if (kind !== 'p') args.push(String(major), String(minor));
  const r = spawnSync('mknod', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.error || r.status !== 0) {
    throw new StowageError('unpack/mknod-failed', `cannot create ${kind === 'p' ? 'fifo' : 'device node'} ${path}: ${r.error ? errorMessage(r.error) : r.stderr.toString().trim()}`);
  }
}

/**
 * Unpacks one layer blob (gzip, zstd or plain tar) into `targetDir`, which must exist.
 */
export async function unpackLayer(blob: LayerBytes, targetDir: string, options: UnpackOptions): Promise<UnpackResult> {
  const { signal, asRoot } = options;
  const mode: WhiteoutMode = options.whiteouts ?? 'apply';
  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
    options.onWarning?.(m);
  };
  const root = targetDir.replace(/\/+$/, '') || '/';
  const rootStat = lstatOrUndefined(root);
  if (!rootStat?.isDirectory()) throw new StowageError('unpack/no-target', `unpack target ${root} is not a directory`);
  const ignore: ReadonlySet<string> = options.ignore ?? new Set();
  const subprocesses = options.subprocesses ?? true;
  if (ignore.size > 0 && mode !== 'apply') throw new Error('unpackLayer: an ignore list needs whiteouts: apply');

  const resolver = new RootResolver(root, ignore);
  const created = new Set<string>();
  const whiteouts = new Set<string>();
  const opaqueDirs: string[] = [];
  const fileOps: MetadataOp[] = [];
  const dirs = new Map<string, DirMeta>();
  const tarHash = createHash('sha256');

  const filterXattrs = (x: Record<string, Buffer>, path: string): Record<string, Buffer> => {
    const out: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(x)) {
      if (k.startsWith('trusted.') && !asRoot) {
        warn(`skipped xattr ${k} on ${path}: trusted.* needs root`);
        continue;
      }
      out[k] = v;
    }
    return out;
  };

  /**
   * Forgets pending metadata for everything under a removed directory: a later entry may put a
   * symlink where the directory was, and the deferred ops must not be applied through it.
   */
  const forgetUnder = (host: string): void => {
    const prefix = host + '/';
    for (let i = fileOps.length - 1; i >= 0; i--) if (fileOps[i]!.path.startsWith(prefix)) fileOps.splice(i, 1);
    for (const [rel, d] of dirs) if (d.host.startsWith(prefix) || d.host === host) dirs.delete(rel);
  };

  const removeExisting = (host: string, keepDir: boolean): void => {
    const st = lstatOrUndefined(host);
    if (st === undefined) return;
    if (keepDir && st.isDirectory()) return;
    // rmSync never follows symlinks; it removes the link itself.
    rmSync(host, { recursive: true, force: true });
    if (st.isDirectory()) forgetUnder(host);
    if (st.isDirectory() || st.isSymbolicLink()) resolver.invalidate();
  };

  const owner = (fn: () => void, path: string): void => {
    if (!asRoot) return;
    try {
      fn();
    } catch (e) {
      warn(`cannot change owner of ${path}: ${errorMessage(e)}`);
    }
  };

  const applyEntry = async (h: TarHeader, content: (sink: (c: Buffer) => void) => Promise<void>): Promise<void> => {
    const parts = entryComponents(h.name);
    if (parts.length === 0) return; // the root itself ("./"): never re-mode the target
    const rel = parts.join('/');
    const name = parts[parts.length - 1]!;
    const parentParts = parts.slice(0, -1);
    const parentRel = parentParts.join('/');

    if (name.startsWith(WHITEOUT_PREFIX)) {
      // Applying onto a tree: nothing to delete under a parent that does not exist, so create none.
      const parentHost = resolver.dir(parentParts, mode !== 'apply');
      if (parentHost === undefined || parentHost === IGNORED) return;
      if (name === OPAQUE_MARKER) {
        opaqueDirs.push(parentRel);
        if (mode === 'apply') {
          for (const child of readdirSync(parentHost)) {
            if (created.has(joinPath(parentRel, child))) continue;
            const childHost = childPath(parentHost, child);
            if (ignore.size > 0 && holdsIgnored(resolver.rel(childHost), ignore)) {
              removeAroundIgnored(childHost, resolver.rel(childHost), ignore);
              forgetUnder(childHost);
            } else if (ignore.size === 0 || !isIgnored(resolver.rel(childHost), ignore)) removeExisting(childHost, false);
          }
          resolver.invalidate();
        } else if (mode === 'overlay') {
          const d = dirs.get(parentRel);
          if (d) d.xattrs['trusted.overlay.opaque'] = Buffer.from('y');
          else fileOps.push({ path: parentHost, xattrs: { 'trusted.overlay.opaque': Buffer.from('y') } });
        }
        return;
      }
      if (name.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX)) return; // AUFS metadata (.wh..wh.plnk etc.)
      const victim = name.slice(WHITEOUT_PREFIX.length);
      if (victim === '' || victim === '.' || victim === '..' || victim.includes('/')) return;
      const victimRel = joinPath(parentRel, victim);
      // A path this layer itself (re)creates stays: the layer's own entry wins over its whiteout.
      if (created.has(victimRel)) return;
      whiteouts.add(victimRel);
      if (mode === 'apply') {
        const victimHost = childPath(parentHost, victim);
        const hostRel = resolver.rel(victimHost);
        if (ignore.size > 0 && isIgnored(hostRel, ignore)) return;
        if (ignore.size > 0 && holdsIgnored(hostRel, ignore)) {
          removeAroundIgnored(victimHost, hostRel, ignore);
          forgetUnder(victimHost);
          resolver.invalidate();
        } else removeExisting(victimHost, false);
      }
      else if (mode === 'overlay') {
        if (!asRoot) {
          warn(`cannot create overlay whiteout for ${victimRel} without root`);
          return;
        }
        removeExisting(childPath(parentHost, victim), false);
        mknod(childPath(parentHost, victim), 0, 'c', 0, 0);
      }
      return;
    }

    if (ignore.size > 0 && isIgnored(rel, ignore)) return;
    const parentHost = resolver.dir(parentParts, true)!;
    if (parentHost === IGNORED) return;
    const host = childPath(parentHost, name);
    if (ignore.size > 0) {
      const hostRel = resolver.rel(host);
      if (isIgnored(hostRel, ignore)) return;
      if (h.typeflag !== '5' && holdsIgnored(hostRel, ignore) && lstatOrUndefined(host)?.isDirectory() === true) {
        warn(`skipped ${rel}: it would replace a directory that holds a path on the ignore list`);
        return;
      }
    }
    const xattrs = filterXattrs(h.xattrs, rel);
    created.add(rel);
    if (whiteouts.delete(rel) && h.typeflag === '5') {
      // Deleted and re-created as a directory in one layer: it replaces, not merges with, the lower one.
      opaqueDirs.push(rel);
      if (mode === 'overlay') xattrs['trusted.overlay.opaque'] = Buffer.from('y');
    }
    switch (h.typeflag) {
      case '5': {
        removeExisting(host, true);
        if (lstatOrUndefined(host) === undefined) mkdirSync(host, { mode: 0o700 });
        // Mode, owner, xattrs and mtime are applied after the contents (a 0555 dir must stay writable).
        dirs.set(rel, { host, mode: h.mode, uid: h.uid, gid: h.gid, xattrs, mtimeNs: h.mtimeNs });
        return;
      }
      case '0':
      case '7': {
        removeExisting(host, false);
        const fd = openSync(host, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
        try {
          await content((chunk) => {
            let off = 0;
            while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
          });
          owner(() => fchownSync(fd, h.uid, h.gid), rel);
          fchmodSync(fd, h.mode & 0o7777);
        } finally {
          closeSync(fd);
        }
        fileOps.push({ path: host, xattrs, mtimeNs: h.mtimeNs });
        return;
      }
      case '1': {
        const targetParts = entryComponents(h.linkname);
        if (targetParts.length === 0) throw new StowageError('unpack/unsafe-link', `hardlink ${rel} has an empty target`);
        const tParentDir = resolver.dir(targetParts.slice(0, -1), false);
        if (tParentDir === IGNORED) {
          warn(`skipped hardlink ${rel}: its target ${h.linkname} is on the ignore list`);
          created.delete(rel);
          return;
        }
        const tParent = tParentDir;
        const tHost = tParent === undefined ? undefined : childPath(tParent, targetParts[targetParts.length - 1]!);
        if (tHost !== undefined && ignore.size > 0 && isIgnored(resolver.rel(tHost), ignore)) {
          warn(`skipped hardlink ${rel}: its target ${h.linkname} is on the ignore list`);
          created.delete(rel);
          return;
        }
        const tStat = tHost === undefined ? undefined : lstatOrUndefined(tHost);
        if (tHost === undefined || tStat === undefined || tStat.isDirectory()) {
          throw new StowageError('unpack/bad-hardlink', `hardlink ${rel} points to ${JSON.stringify(h.linkname)}, which is not a file in this layer's root`, {
            hint: 'the layer is malformed or hostile; it was not unpacked',
          });
        }
        if (tHost === host) return;
        removeExisting(host, false);
        linkSync(tHost, host);
        return;
      }
      case '2': {
        removeExisting(host, false);
        symlinkSync(h.linkname, host);
        resolver.invalidate();
        owner(() => lchownSync(host, h.uid, h.gid), rel);
        fileOps.push({ path: host, xattrs, mtimeNs: h.mtimeNs });
        return;
      }
      case '3':
      case '4':
      case '6': {
        if (h.typeflag !== '6' && !asRoot) {
          warn(`skipped device node ${rel}: creating devices needs root`);
          created.delete(rel);
          return;
        }
        if (!subprocesses) {
          warn(`skipped ${h.typeflag === '6' ? 'fifo' : 'device node'} ${rel}: --isolation=none runs no mknod`);
          created.delete(rel);
          return;
        }
        removeExisting(host, false);
        mknod(host, h.mode, h.typeflag === '3' ? 'c' : h.typeflag === '4' ? 'b' : 'p', h.devMajor, h.devMinor);
        owner(() => lchownSync(host, h.uid, h.gid), rel);
        chmodSync(host, h.mode & 0o7777);
        fileOps.push({ path: host, xattrs, mtimeNs: h.mtimeNs });
        return;
      }
      default:
        created.delete(rel);
        warn(`skipped ${rel}: unsupported tar entry type ${JSON.stringify(h.typeflag)}`);
    }
  };

  const source = hashed(decompress(blob, signal, subprocesses), tarHash);
  for await (const entry of readTar(source, signal)) {
    await applyEntry(entry.header, entry.content);
  }

  // Directories last, deepest first, so their mtimes survive the creation of their contents.
  const dirList = [...dirs.entries()].sort((a, b) => (a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : 0));
  const ops = [...fileOps];
  for (const [rel, d] of dirList) {
    if (lstatOrUndefined(d.host)?.isDirectory() !== true) continue; // replaced later in the layer
    owner(() => lchownSync(d.host, d.uid, d.gid), rel);
    chmodSync(d.host, d.mode & 0o7777);
    ops.push({ path: d.host, xattrs: d.xattrs, mtimeNs: d.mtimeNs });
  }
  for (const w of subprocesses ? await applyMetadata(ops, signal) : applyMetadataWithNode(ops)) warn(w);
  return { diffId: `sha256:${tarHash.digest('hex')}` as Digest, whiteouts: [...whiteouts], opaqueDirs, warnings };
}
