/**
 * Deterministic layer writer: ChangeSet → sorted tar → parallel gzip → BlobStore, with the diffId
 * (sha256 of the tar) and the blob digest (sha256 of the gzip) computed in the same single pass
 * that writes the temp file. Each source file is read exactly once.
 */
import { createHash } from 'node:crypto';
import { constants as fsc, promises as fsp } from 'node:fs';
import { StowageError, assertNever } from '../../util/errors.js';
import type { Digest } from '../../image/digest.js';
import { MediaType } from '../../image/media-types.js';
import type { Descriptor } from '../../image/types.js';
import type { BlobStore } from '../../store/types.js';
import {
  OPAQUE_MARKER,
  WHITEOUT_PREFIX,
  baseName,
  joinPath,
  parentOf,
  planLayer,
  type ChangeEntry,
  type ChangeSet,
  type LayerItem,
  type PlanOptions,
} from './changeset.js';
import { parallelGzip } from './gzip.js';
import { END_OF_ARCHIVE, encodeHeader, padding, type TarHeader } from './tar-format.js';

export interface WriteLayerOptions {
  signal?: AbortSignal;
  /** SOURCE_DATE_EPOCH / --reproducible: timestamps later than this (seconds) are clamped to it. */
  clampMtime?: number;
  /** gzip level, default 6. */
  gzipLevel?: number;
  /** Metadata for parent directories the change set lacks (default: 0755 root:root, mtime 0). */
  parentMetadata?: PlanOptions['parentMetadata'];
}

export interface LayerResult {
  descriptor: Descriptor;
  diffId: Digest;
  /** Uncompressed tar size. */
  tarSize: number;
}

const READ_CHUNK = 1024 * 1024;

function clamp(ns: bigint, clampSec: number | undefined): bigint {
  if (clampSec === undefined) return ns;
  const max = BigInt(Math.floor(clampSec)) * 1_000_000_000n;
  return ns > max ? max : ns;
}

function headerFor(item: LayerItem, clampSec: number | undefined): TarHeader {
  const base = { uid: 0, gid: 0, size: 0, linkname: '', devMajor: 0, devMinor: 0, xattrs: {} as Record<string, Buffer> };
  switch (item.kind) {
    case 'whiteout':
      return { ...base, name: joinPath(parentOf(item.path), WHITEOUT_PREFIX + baseName(item.path)), typeflag: '0', mode: 0o644, mtimeNs: clamp(item.parentMtimeNs, clampSec) };
    case 'opaque':
      return { ...base, name: joinPath(item.dir, OPAQUE_MARKER), typeflag: '0', mode: 0o644, mtimeNs: clamp(item.dirMtimeNs, clampSec) };
    case 'entry':
      return entryHeader(item.entry, clampSec);
    default:
      return assertNever(item, 'layer item');
  }
}

function entryHeader(e: ChangeEntry, clampSec: number | undefined): TarHeader {
  const xattrs: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(e.xattrs ?? {})) xattrs[k] = Buffer.from(v);
  const h: TarHeader = {
    name: e.path,
    typeflag: '0',
    mode: e.mode & 0o7777,
    uid: e.uid,
    gid: e.gid,
    size: 0,
    mtimeNs: clamp(e.mtimeNs, clampSec),
    linkname: '',
    devMajor: 0,
    devMinor: 0,
    xattrs,
  };
  switch (e.type) {
    case 'file':
      h.size = e.size;
      break;
    case 'dir':
      h.name = e.path + '/';
      h.typeflag = '5';
      break;
    case 'symlink':
      h.typeflag = '2';
      h.linkname = e.linkTarget ?? '';
      break;
    case 'hardlink':
      h.typeflag = '1';
      h.linkname = e.linkTarget ?? '';
      break;
    case 'char':
    case 'block':
      h.typeflag = e.type === 'char' ? '3' : '4';
      h.devMajor = e.devMajor ?? 0;
      h.devMinor = e.devMinor ?? 0;
      break;
    case 'fifo':
      h.typeflag = '6';
      break;
    default:
      return assertNever(e.type, 'entry type');
  }
  return h;
}

async function* fileContent(e: ChangeEntry, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  if (e.size === 0) return;
  if (e.source === undefined) {
    throw new StowageError('layer/no-source', `layer entry ${e.path} has content but no source file`);
  }
  const fh = await fsp.open(e.source, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    let left = e.size;
    while (left > 0) {
      signal?.throwIfAborted();
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      left -= bytesRead;
      yield buf.subarray(0, bytesRead);
    }
    const extra = await fh.read(Buffer.alloc(1), 0, 1, null);
    if (left !== 0 || extra.bytesRead !== 0) {
      throw new StowageError('layer/file-changed', `${e.path} changed size while the layer was being written`, {
        hint: 'something else is modifying the build root; make sure no process from the step is still running',
      });
    }
  } finally {
    await fh.close();
  }
}

/** The uncompressed tar of a planned layer, as a stream of chunks. */
export async function* tarStream(items: readonly LayerItem[], options: { clampMtime?: number; signal?: AbortSignal } = {}): AsyncGenerator<Buffer> {
  for (const item of items) {
    options.signal?.throwIfAborted();
    const h = headerFor(item, options.clampMtime);
    yield encodeHeader(h);
    if (item.kind === 'entry' && item.entry.type === 'file' && h.size > 0) {
      yield* fileContent(item.entry, options.signal);
      const pad = padding(h.size);
      if (pad > 0) yield Buffer.alloc(pad);
    }
  }
  yield END_OF_ARCHIVE;
}

async function* hashing(source: AsyncIterable<Buffer>, hash: ReturnType<typeof createHash>, count: { n: number }): AsyncGenerator<Buffer> {
  for await (const c of source) {
    hash.update(c);
    count.n += c.length;
    yield c;
  }
}

/** Writes a layer blob into `store` and returns its descriptor and diffId. */
export async function writeLayer(changes: ChangeSet, store: BlobStore, options: WriteLayerOptions = {}): Promise<LayerResult> {
  const planOptions: PlanOptions = {};
  if (options.parentMetadata) planOptions.parentMetadata = options.parentMetadata;
  const items = planLayer(changes, planOptions);
  const tarOptions: { clampMtime?: number; signal?: AbortSignal } = {};
  if (options.clampMtime !== undefined) tarOptions.clampMtime = options.clampMtime;
  if (options.signal) tarOptions.signal = options.signal;

  const tarHash = createHash('sha256');
  const gzHash = createHash('sha256');
  const tarCount = { n: 0 };
  let gzSize = 0;
  const tmp = store.tempPath('layer');
  const fh = await fsp.open(tmp, 'wx', 0o644);
  let adopted = false;
  try {
    const gzOptions: { level?: number; signal?: AbortSignal } = {};
    if (options.gzipLevel !== undefined) gzOptions.level = options.gzipLevel;
    if (options.signal) gzOptions.signal = options.signal;
    for await (const member of parallelGzip(hashing(tarStream(items, tarOptions), tarHash, tarCount), gzOptions)) {
      gzHash.update(member);
      gzSize += member.length;
      let off = 0;
      while (off < member.length) off += (await fh.write(member, off, member.length - off)).bytesWritten;
    }
    await fh.sync();
    await fh.close();
    const digest = `sha256:${gzHash.digest('hex')}` as Digest;
    await store.adopt(tmp, { digest, size: gzSize });
    adopted = true;
    return {
      descriptor: { mediaType: MediaType.OciLayerGzip, digest, size: gzSize },
      diffId: `sha256:${tarHash.digest('hex')}` as Digest,
      tarSize: tarCount.n,
    };
  } finally {
    if (!adopted) {
      await fh.close().catch(() => {});
      await fsp.rm(tmp, { force: true });
    }
  }
}
