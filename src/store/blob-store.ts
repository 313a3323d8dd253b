import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { addAbortSignal, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestHex, type Digest } from '../image/digest.js';
import { StowageError } from '../util/errors.js';
import { createExclusiveWriteStream, syncFile, syncFileSystem } from './atomic.js';
import type { BatchSyncedStore, BlobInfo, BlobStore } from './types.js';
import { BLOB_READ_HIGH_WATER_MARK } from './layers.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Content-addressed blobs under `<cacheDir>/blobs/sha256/<hex>`.
 *
 * A blob file exists only once its bytes are complete and verified: writers stream into
 * `<cacheDir>/tmp/`, hash while writing, fsync, and rename into place. rename(2) is atomic and
 * replaces, so two processes writing the same blob both succeed and leave one correct file; a
 * writer killed midway leaves only a temp file, which no reader looks at and which `cleanTemp`
 * removes once it is older than a day (younger ones may belong to a live writer).
 */
export class FsBlobStore implements BlobStore {
  readonly root: string;
  private readonly blobDir: string;
  private readonly tmpDir: string;
  /** Temp files are `<tmpDir>/<tempPrefix><hint>-<pid>-<random>`. */
  private readonly tempPrefix: string;
  /** fsync each blob before its rename (false only for BatchSyncedStore subclasses). */
  protected readonly syncEach: boolean = true;

  constructor(cacheDir: string, layout: { blobDir?: string; tmpDir?: string; tempPrefix?: string } = {}) {
    this.root = cacheDir;
    this.blobDir = layout.blobDir ?? join(cacheDir, 'blobs', 'sha256');
    this.tmpDir = layout.tmpDir ?? join(cacheDir, 'tmp');
    this.tempPrefix = layout.tempPrefix ?? '';
  }

  /** Creates the directories and removes stale temp files. Use this rather than `new` in programs. */
  static async open(cacheDir: string, options: { staleAfterMs?: number; now?: number } = {}): Promise<FsBlobStore> {
    const store = new FsBlobStore(cacheDir);
    await mkdir(store.blobDir, { recursive: true });
    await mkdir(store.tmpDir, { recursive: true });
    await store.cleanTemp(options);
    return store;
  }

  pathOf(digest: Digest): string {
    // digestHex of a Digest is 64 hex characters, so the path cannot leave blobDir.
    return join(this.blobDir, digestHex(digest));
  }

  async has(digest: Digest): Promise<boolean> {
    return (await this.stat(digest)) !== undefined;
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.pathOf(digest));
      return s.isFile() ? { digest, size: s.size } : undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async openRead(digest: Digest, signal?: AbortSignal): Promise<Readable> {
    signal?.throwIfAborted();
    let fh;
    try {
      fh = await open(this.pathOf(digest), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new StowageError('store/blob-not-found', `blob ${digest} is not in the store at ${this.root}`, { cause: e });
      }
      throw e;
    }
    const stream = fh.createReadStream({ highWaterMark: BLOB_READ_HIGH_WATER_MARK });
    return signal ? addAbortSignal(signal, stream) : stream;
  }

  tempPath(hint = 'blob'): string {
    const safe = hint.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40);
    return join(this.tmpDir, `${this.tempPrefix}${safe}-${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  async write(
    source: Readable | Uint8Array,
    options: { expected?: Digest; expectedSize?: number; signal?: AbortSignal } = {},
  ): Promise<BlobInfo> {
    const { expected, expectedSize, signal } = options;
    signal?.throwIfAborted();
    if (expected !== undefined) {
      const present = await this.stat(expected);
      if (present && (expectedSize === undefined || present.size === expectedSize)) {
        // Already verified when it was stored; the caller's bytes are not needed.
        if (source instanceof Readable) source.destroy();
        return present;
      }
    }
    await mkdir(this.tmpDir, { recursive: true });
    const tmp = this.tempPath(expected ? digestHex(expected).slice(0, 16) : 'write');
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, callback) {
        size += chunk.length;
        // Stop early instead of filling the disk with a blob we will reject anyway.
        if (expectedSize !== undefined && size > expectedSize) {
          callback(sizeMismatch(expected, expectedSize, `more than ${expectedSize}`));
          return;
        }
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    const input = source instanceof Readable ? source : Readable.from([Buffer.from(source.buffer, source.byteOffset, source.byteLength)]);
    try {
      await pipeline(input, meter, await createExclusiveWriteStream(tmp), signal ? { signal } : {});
      const digest = `sha256:${hash.digest('hex')}` as Digest;
      if (expected !== undefined && digest !== expected) {
        throw new StowageError('store/digest-mismatch', `content hashes to ${digest}, expected ${expected}`, {
          hint: 'the source sent different bytes than its descriptor says; nothing was stored',
        });
      }
      if (expectedSize !== undefined && size !== expectedSize) throw sizeMismatch(expected, expectedSize, String(size));
      if (this.syncEach) await syncFile(tmp);
      const info: BlobInfo = { digest, size };
      await this.adopt(tmp, info);
      return info;
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async adopt(tempPath: string, info: BlobInfo): Promise<void> {
    await mkdir(this.blobDir, { recursive: true });
    await rename(tempPath, this.pathOf(info.digest));
  }

  /** Removes temp files older than `staleAfterMs` (default one day). Returns how many were removed. */
  async cleanTemp(options: { staleAfterMs?: number; now?: number } = {}): Promise<number> {
    const cutoff = (options.now ?? Date.now()) - (options.staleAfterMs ?? DAY_MS);
    let names: string[];
    try {
      names = await readdir(this.tmpDir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
    let removed = 0;
    for (const name of names) {
      // A shared temp directory (an OCI layout's own) holds other things too: only our temp files.
      if (this.tempPrefix !== '' && !name.startsWith(this.tempPrefix)) continue;
      const p = join(this.tmpDir, name);
      try {
        const s = await stat(p);
        if (s.mtimeMs < cutoff) {
          await rm(p, { force: true, recursive: true });
          removed++;
        }
      } catch (e) {
        // Another process may have renamed or removed it meanwhile.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    return removed;
  }
}

/**
 * A blob store whose blobs are written straight into another directory tree (an OCI layout's
 * `blobs/sha256`) without an fsync per blob; `syncAll` makes the whole file system durable once
 * (syncfs), before the caller publishes anything that refers to the blobs. Every blob is still
 * hashed into a temp file and renamed into place only when it matched its digest.
 */
export class BatchSyncedBlobStore extends FsBlobStore implements BatchSyncedStore {
  readonly batchSync = true as const;
  protected override readonly syncEach = false;

  async syncAll(signal?: AbortSignal): Promise<void> {
    await syncFileSystem(this.root, signal);
  }
}

function sizeMismatch(expected: Digest | undefined, expectedSize: number, got: string): StowageError {
  return new StowageError('store/size-mismatch', `content${expected ? ` for ${expected}` : ''} is ${got} bytes, expected ${expectedSize}`, {
    hint: 'the source sent a different amount of data than its descriptor says; nothing was stored',
  });
}
