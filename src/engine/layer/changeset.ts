/**
 * The layer writer's input: what one step changed, as data. Snapshotters produce it; COPY/ADD may
 * build one directly. Everything here is pure: sorting and whiteout pruning decide *what* goes into
 * the tar, the writer only serialises it.
 */

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface ChangeEntry {
  /** Relative POSIX path inside the rootfs: no leading `/` or `./`, no trailing `/`, no `..`. */
  path: string;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky (`mode & 0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time in nanoseconds since the epoch. */
  mtimeNs: bigint;
  /** Content length for `file`; 0 otherwise. */
  size: number;
  /** Symlink target (verbatim), or for `hardlink` the layer path of the file it links to. */
  linkTarget?: string;
  /** Extended attributes, name → raw value (e.g. `security.capability`). */
  xattrs?: Readonly<Record<string, Uint8Array>>;
  devMajor?: number;
  devMinor?: number;
  /** Absolute host path to read a `file`'s content from (read exactly once while writing). */
  source?: string;
  /**
   * Identity of the underlying inode (`dev:ino`) for files with more than one link. Files sharing a
   * key become one regular file (the first in layer order) plus type-1 hardlinks to it.
   */
  inodeKey?: string;
}

export interface ChangeSet {
  entries: ChangeEntry[];
  /** Paths deleted relative to the lower layers (become `.wh.<name>`). */
  deletions: string[];
  /** Directories whose lower content is hidden entirely (get `dir/.wh..wh..opq`). */
  opaqueDirs: string[];
}

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

/** One item of the tar in final order. */
export type LayerItem =
  | { kind: 'entry'; entry: ChangeEntry }
  | { kind: 'whiteout'; path: string; parentMtimeNs: bigint }
  | { kind: 'opaque'; dir: string; dirMtimeNs: bigint };

export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

export function baseName(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}

/** Every proper ancestor of `p`, shortest first (`a/b/c` → `a`, `a/b`). */
export function ancestorsOf(p: string): string[] {
  const out: string[] = [];
  let i = p.indexOf('/');
  while (i >= 0) {
    out.push(p.slice(0, i));
    i = p.indexOf('/', i + 1);
  }
  return out;
}

/** Whether `p` is already in change-set form: non-empty components, none `.` or `..`. */
function isNormalLayerPath(p: string): boolean {
  let start = 0;
  for (;;) {
    const end = p.indexOf('/', start);
    const len = (end < 0 ? p.length : end) - start;
    if (len === 0) return false;
    if (p.charCodeAt(start) === 0x2e /* . */ && (len === 1 || (len === 2 && p.charCodeAt(start + 1) === 0x2e))) return false;
    if (end < 0) return true;
    start = end + 1;
  }
}

/**
 * Normalises a user- or tool-supplied path to the change-set form, or returns undefined when it
 * would leave the root (`..`) or names the root itself.
 */
export function normalizeLayerPath(raw: string): string | undefined {
  if (isNormalLayerPath(raw)) return raw; // snapshotters' paths already are: no array per path
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return undefined;
    parts.push(part);
  }
  return parts.length === 0 ? undefined : parts.join('/');
}

/** A UTF-16 code unit mapped so that comparing mapped units orders strings as UTF-8 bytes do. */
function utf8Rank(c: number): number {
  // Surrogates (code points ≥ U+10000, 4 UTF-8 bytes) sort after U+E000–U+FFFF, not before.
  return c >= 0xd800 && c <= 0xdfff ? c + 0x2000 : c >= 0xe000 ? c - 0x800 : c;
}

/**
 * Tar order: component-wise bytewise comparison, so parents come before children and a directory's
 * subtree is contiguous. Equivalent to comparing the UTF-8 bytes with `/` ranked below every other
 * byte, which is how this compares, on the strings themselves (no key objects per entry). An opaque
 * marker is keyed `dir/`, so it sorts right after its directory and before all its children.
 */
export function compareLayerPaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca === 0x2f) return -1;
    if (cb === 0x2f) return 1;
    return utf8Rank(ca) - utf8Rank(cb);
  }
  return a.length - b.length;
}

export interface PlanOptions {
  /** Metadata for a parent directory missing from `entries` (snapshotters include parents themselves). */
  parentMetadata?: (path: string) => ChangeEntry | undefined;
}

/**
 * Decides the layer's content and order: adds missing parent directories, drops whiteouts that are
 * redundant (under a deleted, replaced or opaque directory, or for a path re-created in this layer),
 * turns repeated inodes into hardlinks to their first occurrence, and sorts.
 */
export function planLayer(changes: ChangeSet, options: PlanOptions = {}): LayerItem[] {
  const entries = new Map<string, ChangeEntry>();
  for (const e of changes.entries) {
    const p = normalizeLayerPath(e.path);
    if (p === undefined) continue;
    entries.set(p, p === e.path ? e : { ...e, path: p });
  }
  const opaque = new Set<string>();
  for (const d of changes.opaqueDirs) {
    const p = normalizeLayerPath(d);
    if (p !== undefined) opaque.add(p);
  }
  // An opaque directory is itself part of the layer.
  for (const d of opaque) {
    const e = entries.get(d);
    if (e === undefined || e.type !== 'dir') {
      const meta = options.parentMetadata?.(d);
      entries.set(d, meta ?? syntheticDir(d));
    }
  }
  const deletions = new Set<string>();
  for (const d of changes.deletions) {
    const p = normalizeLayerPath(d);
    if (p !== undefined && !entries.has(p)) deletions.add(p);
  }
  // Drop whiteouts made redundant by a deleted/replaced/opaque ancestor.
  for (const d of [...deletions]) {
    for (const a of ancestorsOf(d)) {
      const e = entries.get(a);
      if (deletions.has(a) || opaque.has(a) || (e !== undefined && e.type !== 'dir')) {
        deletions.delete(d);
        break;
      }
    }
  }
  // Parents of everything present.
  const needParents = [...entries.keys(), ...deletions];
  for (const p of needParents) {
    for (const a of ancestorsOf(p)) {
      if (!entries.has(a)) entries.set(a, options.parentMetadata?.(a) ?? syntheticDir(a));
    }
  }

  type Keyed = { key: string; item: LayerItem };
  const keyed: Keyed[] = [];
  const mtimeOf = (p: string): bigint => (p === '' ? 0n : (entries.get(p)?.mtimeNs ?? 0n));
  for (const e of entries.values()) keyed.push({ key: e.path, item: { kind: 'entry', entry: e } });
  for (const d of deletions) {
    const wh = joinPath(parentOf(d), WHITEOUT_PREFIX + baseName(d));
    keyed.push({ key: wh, item: { kind: 'whiteout', path: d, parentMtimeNs: mtimeOf(parentOf(d)) } });
  }
  for (const d of opaque) keyed.push({ key: `${d}/`, item: { kind: 'opaque', dir: d, dirMtimeNs: mtimeOf(d) } });
  keyed.sort((a, b) => compareLayerPaths(a.key, b.key));

  // Hardlinks: the first occurrence of an inode in layer order is the file, later ones link to it.
  const firstByInode = new Map<string, string>();
  const out: LayerItem[] = [];
  for (const { item } of keyed) {
    if (item.kind === 'entry' && item.entry.type === 'file' && item.entry.inodeKey !== undefined) {
      const first = firstByInode.get(item.entry.inodeKey);
      if (first === undefined) {
        firstByInode.set(item.entry.inodeKey, item.entry.path);
      } else {
        out.push({ kind: 'entry', entry: { ...item.entry, type: 'hardlink', linkTarget: first, size: 0 } });
        continue;
      }
    }
    out.push(item);
  }
  return out;
}

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

function syntheticDir(path: string): ChangeEntry {
  return { path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, size: 0 };
}
