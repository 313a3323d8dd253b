/**
 * Deterministic layer writer: ChangeSet → sorted tar → parallel gzip → BlobStore, with the diffId
 * (sha256 of the tar) and the blob digest (sha256 of the gzip) computed in the same single pass
 * that writes the temp file. Each source file is read exactly once, straight into the tar's buffers.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants as fsc, openSync, promises as fsp, readSync } from 'node:fs';
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
import { parallelGzip, type ParallelGzipOptions } from './gzip.js';
import { BLOCK, END_OF_ARCHIVE, encodeHeader, padding, type TarHeader } from './tar-format.js';

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

function clamp(ns: bigint, clampSec: number | undefined): bigint {
  if (clampSec === undefined) return ns;
  const max = BigInt(Math.floor(clampSec)) * 1_000_000_000n;
  return ns > max ? max : ns;
}

/** The xattrs of an entry that has none (most): one shared object, never written to. */
const NO_XATTRS: Readonly<Record<string, Buffer>> = Object.freeze({});

function headerFor(item: LayerItem, clampSec: number | undefined): TarHeader {
  switch (item.kind) {
    case 'whiteout':
      return markerHeader(joinPath(parentOf(item.path), WHITEOUT_PREFIX + baseName(item.path)), clamp(item.parentMtimeNs, clampSec));
    case 'opaque':
      return markerHeader(joinPath(item.dir, OPAQUE_MARKER), clamp(item.dirMtimeNs, clampSec));
    case 'entry':
      return entryHeader(item.entry, clampSec);
    default:
      return assertNever(item, 'layer item');
  }
}

/** A whiteout or opaque marker: an empty regular file owned by root. */
function markerHeader(name: string, mtimeNs: bigint): TarHeader {
  return { name, typeflag: '0', mode: 0o644, uid: 0, gid: 0, size: 0, mtimeNs, linkname: '', devMajor: 0, devMinor: 0, xattrs: NO_XATTRS };
}

function entryHeader(e: ChangeEntry, clampSec: number | undefined): TarHeader {
  let xattrs = NO_XATTRS;
  if (e.xattrs !== undefined) {
    const own: Record<string, Buffer> = {};
    let any = false;
    for (const k in e.xattrs) {
      own[k] = Buffer.from(e.xattrs[k]!);
      any = true;
    }
    if (any) xattrs = own;
  }
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

function fileChanged(e: ChangeEntry): StowageError {
  return new StowageError('layer/file-changed', `${e.path} changed size while the layer was being written`, {
    hint: 'something else is modifying the build root; make sure no process from the step is still running',
  });
}

function noSource(e: ChangeEntry): StowageError {
  return new StowageError('layer/no-source', `layer entry ${e.path} has content but no source file`);
}

/**
 * Fixed-size buffers handed out again once their last user is done with them, so a layer's memory
 * is the blocks in flight (a handful of MiB), not whatever the garbage collector has not yet freed
 * (V8 collects external memory only after ~64 MiB of it has piled up).
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  constructor(
    readonly size: number,
    /** Buffers kept for reuse; more than this are left to the GC. */
    private readonly keep: number,
  ) {}
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.size);
  }
  /** Returns a buffer taken from this pool; its bytes may be overwritten at once. */
  give(buf: Buffer): void {
    if (buf.length === this.size && this.free.length < this.keep) this.free.push(buf);
  }
}

/** Default tar block: the parallel gzip's member size, so blocks go to gzip without a copy. */
export const TAR_BLOCK_SIZE = 1024 * 1024;
/** gzip members compressed at once (libuv's threadpool has 4 threads). */
const GZIP_CONCURRENCY = 4;

export interface TarBlockOptions {
  clampMtime?: number;
  signal?: AbortSignal;
  /** Where blocks come from (default: fresh buffers of TAR_BLOCK_SIZE). */
  pool?: BufferPool;
}

/**
 * The uncompressed tar of a planned layer, cut into blocks of exactly `pool.size` bytes (the last
 * one shorter). Headers, file contents and padding are written straight into the blocks — a file
 * is read once, into place, whatever its size, and never held whole — so a 20,000-file layer is
 * ~200 buffers, each from the pool. A yielded block belongs to the consumer until it gives it back.
 *
 * Files are read with synchronous calls (open, read into the block, close: no promise or FileHandle
 * per file, which cost more CPU than the read itself); the event loop is held for at most one block.
 */
export async function* tarBlocks(items: readonly LayerItem[], options: TarBlockOptions = {}): AsyncGenerator<Buffer> {
  const pool = options.pool ?? new BufferPool(TAR_BLOCK_SIZE, 0);
  const size = pool.size;
  let block = pool.take();
  let used = 0;
  const probe = Buffer.alloc(1);
  // Room for an entry's PAX header too (an mtime with nanoseconds needs one: most entries).
  const scratch = Buffer.alloc(8 * BLOCK);
  for (const item of items) {
    options.signal?.throwIfAborted();
    const h = headerFor(item, options.clampMtime);
    const header = encodeHeader(h, scratch);
    for (let off = 0; off < header.length; ) {
      const n = header.copy(block, used, off);
      off += n;
      used += n;
      if (used === size) {
        yield block;
        block = pool.take();
        used = 0;
      }
    }
    if (item.kind !== 'entry' || item.entry.type !== 'file' || h.size === 0) continue;
    const e = item.entry;
    if (e.source === undefined) throw noSource(e);
    const fd = openSync(e.source, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      let left = e.size;
      // Where the block has room, each read asks for one byte more than the file should have left:
      // a short read then shows the end was reached (a regular file reads short only at its end),
      // and only a file that ends exactly at a block boundary needs a separate read to prove it
      // has not grown (20,000 files: 20,000 syscalls fewer). The extra byte, if it came, lands in
      // block space the next entry overwrites, and is an error anyway.
      let atEnd = false;
      while (left > 0) {
        const want = Math.min(size - used, left + 1);
        const n = readSync(fd, block, used, want, null);
        if (n === 0 || n > left) throw fileChanged(e);
        atEnd = n < want;
        left -= n;
        used += n;
        if (used === size) {
          yield block;
          block = pool.take();
          used = 0;
          options.signal?.throwIfAborted();
        }
      }
      if (!atEnd && readSync(fd, probe, 0, 1, null) !== 0) throw fileChanged(e);
    } finally {
      closeSync(fd);
    }
    for (let pad = padding(e.size); pad > 0; ) {
      const n = Math.min(pad, size - used);
      block.fill(0, used, used + n);
      pad -= n;
      used += n;
      if (used === size) {
        yield block;
        block = pool.take();
        used = 0;
      }
    }
  }
  for (let left = END_OF_ARCHIVE.length; left > 0; ) {
    const n = Math.min(left, size - used);
    block.fill(0, used, used + n);
    left -= n;
    used += n;
    if (used === size && left > 0) {
      yield block;
      block = pool.take();
      used = 0;
    }
  }
  yield used === size ? block : block.subarray(0, used);
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
  const concurrency = GZIP_CONCURRENCY;
  // Blocks in flight: those being compressed, the one being filled, the one between the two.
  const pool = new BufferPool(TAR_BLOCK_SIZE, concurrency + 2);
  const tarOptions: TarBlockOptions = { pool };
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
    const gzOptions: ParallelGzipOptions = { blockSize: TAR_BLOCK_SIZE, concurrency, release: (b) => pool.give(b) };
    if (options.gzipLevel !== undefined) gzOptions.level = options.gzipLevel;
    if (options.signal) gzOptions.signal = options.signal;
    for await (const member of parallelGzip(hashing(tarBlocks(items, tarOptions), tarHash, tarCount), gzOptions)) {
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
