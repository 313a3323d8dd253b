import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { addAbortSignal } from 'node:stream';
import type { Blob, FileBackedBlob, Layer, VerifiedFileBlob } from '../image/blob.js';
import type { Digest } from '../image/digest.js';
import type { Descriptor } from '../image/types.js';
import { StowageError } from '../util/errors.js';
import type { BlobStore } from './types.js';

/**
 * Blob files are read in 1 MiB slices (Node's default is 64 KiB): 16× fewer read calls and chunks
 * through every hash, gzip and socket write downstream, for a few MiB of buffers at most.
 */
export const BLOB_READ_HIGH_WATER_MARK = 1024 * 1024;

/** Opens a file as a stream, with a clear error when it is missing. */
export async function openFile(path: string, what: string, signal?: AbortSignal, range?: { start: number; end: number }): Promise<Readable> {
  signal?.throwIfAborted();
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new StowageError('store/blob-not-found', `${what} is missing: ${path}`, { cause: e });
    }
    throw e;
  }
  const stream = fh.createReadStream({ highWaterMark: BLOB_READ_HIGH_WATER_MARK, ...(range ? { start: range.start, end: range.end } : {}) });
  return signal ? addAbortSignal(signal, stream) : stream;
}

/** A blob whose bytes are the file at `path`. */
export function fileBlob(path: string, descriptor: Descriptor): Blob & FileBackedBlob {
  return { descriptor, path, open: (signal) => openFile(path, `blob ${descriptor.digest}`, signal) };
}

/** A layer whose compressed bytes are the file at `path`. */
export function fileLayer(path: string, descriptor: Descriptor, diffId: Digest): Layer & FileBackedBlob {
  return { descriptor, diffId, path, open: (signal) => openFile(path, `layer ${descriptor.digest}`, signal) };
}

/** A layer kept in the blob store (verified when stored, never modified). */
export function storeLayer(store: BlobStore, descriptor: Descriptor, diffId: Digest): Layer & VerifiedFileBlob {
  return { descriptor, diffId, path: store.pathOf(descriptor.digest), verified: true, open: (signal) => store.openRead(descriptor.digest, signal) };
}
