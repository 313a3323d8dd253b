import type { Readable } from 'node:stream';
import type { Digest } from './digest.js';
import type { Descriptor, ImageConfig, ImageManifest } from './types.js';

/**
 * Content whose identity is known synchronously and whose bytes are an async stream.
 * `open` may be called more than once (retries re-open).
 */
export interface Blob {
  readonly descriptor: Descriptor;
  open(signal?: AbortSignal): Promise<Readable>;
}

/** A (compressed) layer blob plus the digest of its uncompressed tar. */
export interface Layer extends Blob {
  readonly diffId: Digest;
}

/** Optional capability: the blob is known to live in a registry repository, so it can be mounted. */
export interface MountableBlob extends Blob {
  readonly source: { registry: string; repository: string };
}

export function isMountable(b: Blob): b is MountableBlob {
  return typeof (b as Partial<MountableBlob>).source === 'object' && (b as Partial<MountableBlob>).source !== null;
}

/** Optional capability: the blob's bytes are a local file (re-readable, known length). */
export interface FileBackedBlob extends Blob {
  readonly path: string;
}

export function isFileBacked(b: Blob): b is FileBackedBlob {
  return typeof (b as Partial<FileBackedBlob>).path === 'string';
}

/**
 * Optional capability: the file's bytes were verified against the digest when they were stored and
 * the file is never modified (the local blob store), so it may be copied without re-hashing.
 */
export interface VerifiedFileBlob extends FileBackedBlob {
  readonly verified: true;
}

export function isVerifiedFile(b: Blob): b is VerifiedFileBlob {
  return isFileBacked(b) && (b as Partial<VerifiedFileBlob>).verified === true;
}

/** A single-platform image: manifest and config are small and held as bytes. */
export interface Image {
  readonly manifest: ImageManifest;
  /** Exact manifest bytes; their sha256 is the image digest. */
  readonly manifestBytes: Uint8Array;
  readonly digest: Digest;
  readonly config: ImageConfig;
  readonly configBytes: Uint8Array;
  readonly layers: readonly Layer[];
}
