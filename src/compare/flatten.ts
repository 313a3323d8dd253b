/**
 * Flattens an image's layers into the filesystem a container would see: layers applied in order,
 * whiteouts (`.wh.<name>`) delete, opaque markers (`.wh..wh..opq`) hide everything lower in their
 * directory, and a later entry replaces an earlier one at the same path (a replaced directory loses
 * its lower children only when the replacement is not a directory). The result is a sorted list of
 * entries with the fields the Buildah comparison looks at; mtimes are deliberately absent, since
 * two builders never agree on them.
 */
import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Image } from '../image/blob.js';
import { StowageError } from '../util/errors.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';

export interface FsEntry {
  /** Absolute, normalised: `/`, `/etc/passwd`. */
  path: string;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of a regular file; 0 otherwise. */
  size: number;
  /** sha256 of a regular file's content. */
  sha256?: string;
  /** The content of a small text file, shown in reports (never compared). */
  preview?: string;
  linkTarget?: string;
  /** Device numbers as `major:minor` for char/block devices. */
  device?: string;
  /** xattr name → value (base64), from PAX `SCHILY.xattr.*`. */
  xattrs: Record<string, string>;
  /** The other paths this file is hardlinked with (sorted), when it has any. */
  hardlinks?: string[];
}

const PREVIEW_BYTES = 200;

function previewOf(head: Buffer[], size: number): { preview?: string } {
  if (size === 0 || size > PREVIEW_BYTES) return {};
  const text = Buffer.concat(head).toString('utf8');
  // Only printable text: a binary preview would garble the report.
  return /^[\t\n\r\x20-\x7e]*$/.test(text) ? { preview: text } : {};
}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

/** `./a/b/` → `/a/b`; `` and `./` → `/`. Refuses `..` so a layer cannot name paths outside `/`. */
export function normalizeEntryPath(name: string): string {
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw new StowageError('compare/bad-layer-path', `a layer entry names a path outside the root: ${JSON.stringify(name)}`);
    parts.push(p);
  }
  return '/' + parts.join('/');
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Mutable tree being flattened: path → entry. Kept in a Map so deletes of whole subtrees are prefix scans. */
export class FlatTree {
  readonly entries = new Map<string, FsEntry>();
  /** path → hardlink group id; a path leaves its group when it is replaced or removed. */
  private readonly linkGroup = new Map<string, number>();
  private nextGroup = 0;

  constructor() {
    // Every image has a root directory even if no layer names it.
    this.entries.set('/', { path: '/', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, xattrs: {} });
  }

  removeSubtree(path: string, { keepSelf, keep }: { keepSelf: boolean; keep?: ReadonlySet<string> }): void {
    const prefix = path === '/' ? '/' : path + '/';
    for (const key of [...this.entries.keys()]) {
      if (key.startsWith(prefix) && key !== '/' && !keep?.has(key)) this.delete(key);
    }
    if (!keepSelf && path !== '/') this.delete(path);
  }

  private delete(path: string): void {
    this.entries.delete(path);
    this.linkGroup.delete(path);
  }

  /** `path` becomes a hardlink to `target` (already applied). */
  link(path: string, target: string): void {
    let group = this.linkGroup.get(target);
    if (group === undefined) {
      group = this.nextGroup++;
      this.linkGroup.set(target, group);
    }
    this.linkGroup.set(path, group);
  }

  /** Applies one entry of a layer. */
  put(entry: FsEntry): void {
    const existing = this.entries.get(entry.path);
    if (existing && existing.type === 'dir' && entry.type !== 'dir') this.removeSubtree(entry.path, { keepSelf: false });
    this.linkGroup.delete(entry.path);
    this.entries.set(entry.path, entry);
  }

  sorted(): FsEntry[] {
    const members = new Map<number, string[]>();
    for (const [path, group] of this.linkGroup) members.set(group, [...(members.get(group) ?? []), path]);
    const out = [...this.entries.values()].map((e) => {
      const group = this.linkGroup.get(e.path);
      const others = group === undefined ? [] : members.get(group)!.filter((p) => p !== e.path).sort();
      return others.length > 0 ? { ...e, hardlinks: others } : e;
    });
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}

function isGzip(head: Buffer): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** Peeks at the first bytes so gzip and plain tar (Buildah's `oci:` push is uncompressed) both work. */
async function decompressed(stream: Readable): Promise<Readable> {
  const out = new PassThrough();
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await iterator.next();
  const head = first.done ? Buffer.alloc(0) : Buffer.from(first.value);
  const rest = async function* () {
    yield head;
    for (;;) {
      const r = await iterator.next();
      if (r.done) return;
      yield Buffer.from(r.value);
    }
  };
  const source = PassThrough.from(rest());
  if (isGzip(head)) {
    pipeline(source, createGunzip(), out).catch((e: unknown) => out.destroy(e as Error));
  } else {
    pipeline(source, out).catch((e: unknown) => out.destroy(e as Error));
  }
  return out;
}

function entryType(t: tar.Header['type']): EntryType | 'hardlink' | undefined {
  switch (t) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'directory':
      return 'dir';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'hardlink';
    case 'character-device':
      return 'char';
    case 'block-device':
      return 'block';
    case 'fifo':
      return 'fifo';
    default:
      return undefined;
  }
}

function xattrsOf(header: tar.Header): Record<string, string> {
  const out: Record<string, string> = {};
  const pax = (header as { pax?: Record<string, string> | null }).pax ?? {};
  for (const [k, v] of Object.entries(pax)) {
    if (k.startsWith('SCHILY.xattr.')) out[k.slice('SCHILY.xattr.'.length)] = Buffer.from(v, 'latin1').toString('base64');
  }
  return out;
}

/** Applies one uncompressed-or-gzip layer tar stream to `tree`. */
export async function applyLayer(tree: FlatTree, stream: Readable, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  const extract = tar.extract();
  const input = await decompressed(stream);
  const done = pipeline(input, extract, { signal }).catch((e: unknown) => {
    extract.destroy(e as Error);
    throw e;
  });
  try {
    await applyEntries(tree, extract);
  } catch (e) {
    // Stop reading the layer and let the pipeline settle, so nothing rejects after we return.
    input.destroy();
    await done.catch(() => undefined);
    throw e;
  }
  await done;
}

async function applyEntries(tree: FlatTree, extract: tar.Extract): Promise<void> {
  // Paths this layer itself wrote: an opaque marker hides only what lower layers had.
  const addedInThisLayer = new Set<string>();
  for await (const item of extract) {
    const header = item.header;
    const path = normalizeEntryPath(header.name);
    const name = baseOf(path);
    const hash = createHash('sha256');
    let size = 0;
    const head: Buffer[] = [];
    for await (const chunk of item as AsyncIterable<Buffer>) {
      hash.update(chunk);
      if (size < PREVIEW_BYTES) head.push(chunk);
      size += chunk.length;
    }
    if (name === OPAQUE_MARKER) {
      tree.removeSubtree(parentOf(path), { keepSelf: true, keep: addedInThisLayer });
      continue;
    }
    if (name.startsWith(WHITEOUT_PREFIX)) {
      const victim = parentOf(path) === '/' ? '/' + name.slice(WHITEOUT_PREFIX.length) : parentOf(path) + '/' + name.slice(WHITEOUT_PREFIX.length);
      tree.removeSubtree(victim, { keepSelf: false });
      continue;
    }
    const type = entryType(header.type);
    if (type === undefined) continue; // pax globals etc. carry no filesystem entry
    // The parent chain must exist; a layer that omits parents implies 0755 root dirs (as extractors do).
    for (let p = parentOf(path); p !== '/' && !tree.entries.has(p); p = parentOf(p)) {
      tree.entries.set(p, { path: p, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, xattrs: {} });
    }
    addedInThisLayer.add(path);
    const base = { path, mode: (header.mode ?? 0) & 0o7777, uid: header.uid ?? 0, gid: header.gid ?? 0, xattrs: xattrsOf(header) };
    switch (type) {
      case 'hardlink': {
        // A hardlink is compared as the file it names, plus the set of paths it is linked with.
        const targetPath = normalizeEntryPath(header.linkname ?? '');
        const target = tree.entries.get(targetPath);
        if (!target) throw new StowageError('compare/dangling-hardlink', `layer hardlink ${path} names ${header.linkname}, which is not in the image`);
        tree.put({ ...target, path, xattrs: { ...target.xattrs } });
        tree.link(path, targetPath);
        break;
      }
      case 'file':
        tree.put({ ...base, type, size, sha256: hash.digest('hex'), ...previewOf(head, size) });
        break;
      case 'symlink':
        tree.put({ ...base, type, size: 0, linkTarget: header.linkname ?? '' });
        break;
      case 'char':
      case 'block':
        tree.put({ ...base, type, size: 0, device: `${header.devmajor ?? 0}:${header.devminor ?? 0}` });
        break;
      case 'dir':
      case 'fifo':
        tree.put({ ...base, type, size: 0 });
        break;
    }
  }
}

/** The image's flattened filesystem, sorted by path. */
export async function flattenImage(image: Image, signal: AbortSignal): Promise<FsEntry[]> {
  const tree = new FlatTree();
  for (const layer of image.layers) await applyLayer(tree, await layer.open(signal), signal);
  return tree.sorted();
}
