import type { Readable } from 'node:stream';
import type { Digest } from '../image/digest.js';

export interface BlobInfo {
  digest: Digest;
  size: number;
}

/**
 * Content-addressed blob storage. Writes are verified against their digest before they become
 * visible; a reader never sees a partial blob.
 */
export interface BlobStore {
  /** Absolute path of the blob file if present (for zero-copy reads, hardlinks, sendfile). */
  pathOf(digest: Digest): string;
  has(digest: Digest): Promise<boolean>;
  /** Size if present, undefined otherwise. */
  stat(digest: Digest): Promise<BlobInfo | undefined>;
  openRead(digest: Digest, signal?: AbortSignal): Promise<Readable>;
  /**
   * Streams `source` into the store. With `expected`, the bytes must hash to it (else
   * `StowageError` code `store/digest-mismatch`, nothing stored). Returns the stored digest.
   */
  write(source: Readable | Uint8Array, options?: { expected?: Digest; expectedSize?: number; signal?: AbortSignal }): Promise<BlobInfo>;
  /** Adopts an already-written file at `tempPath` whose digest the caller computed while writing it. */
  adopt(tempPath: string, info: BlobInfo): Promise<void>;
  /** A fresh temp path inside the store's filesystem, for writers that hash while writing. */
  tempPath(hint?: string): string;
}

/**
 * Optional capability: the store does not fsync each blob; it makes everything written through it
 * durable in one step (`syncAll`), which its user calls before publishing anything that refers to
 * the blobs (an OCI layout's index.json). Writers that hash into `tempPath` themselves skip their
 * own fsync for such a store.
 */
export interface BatchSyncedStore extends BlobStore {
  readonly batchSync: true;
  syncAll(signal?: AbortSignal): Promise<void>;
}

export function isBatchSynced(store: BlobStore): store is BatchSyncedStore {
  return (store as Partial<BatchSyncedStore>).batchSync === true;
}
