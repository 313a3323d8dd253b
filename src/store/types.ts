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
