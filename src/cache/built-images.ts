/**
 * Images the last builds assembled, by image key, so a rebuild of an unchanged image is a lookup:
 * no rootfs, no steps, no assembly. The key covers everything the image is made of — the target
 * stage's final step key (base digest, every instruction, context digests, args, platform, epoch),
 * the labels applied last, and the builder's version — so an image found here is the image a build
 * from the step cache would assemble. The record (`<cacheDir>/built-images/<key>.json`) names the
 * manifest; manifest and config bytes live in the blob store beside the layers.
 *
 * Like the step cache, a problem here never fails a build: a missing blob, a corrupt or expired
 * record — each means "build it".
 */
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { mkdir, opendir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Image } from '../image/blob.js';
import { canonicalJsonString } from '../image/canonical.js';
import { parseDigest, type Digest } from '../image/digest.js';
import { imageFromBytes } from '../image/image.js';
import { writeFileAtomic } from '../store/atomic.js';
import { storeLayer } from '../store/layers.js';
import type { BlobStore } from '../store/types.js';
import { errorMessage } from '../util/errors.js';

const RECORD_VERSION = 1;

/**
 * The identity of an assembled image. The epoch is part of it although every step key has it: an
 * image with no steps of its own (FROM x, labels) has its base's final key, yet the epoch sets its
 * `created` time. Absent, it adds nothing, so keys of builds without one stay what they were.
 */
export function imageKey(parts: { finalKey: string; labels: Readonly<Record<string, string>>; builder: string; sourceDateEpoch?: number }): string {
  const text = canonicalJsonString({
    v: RECORD_VERSION,
    final: parts.finalKey,
    labels: parts.labels,
    builder: parts.builder,
    ...(parts.sourceDateEpoch !== undefined ? { epoch: parts.sourceDateEpoch } : {}),
  });
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

interface BuiltImageRecord {
  version: typeof RECORD_VERSION;
  key: string;
  manifest: { digest: Digest; size: number; mediaType: string };
  /** When the image was recorded (RFC 3339), for the cache TTL. */
  writtenAt: string;
}

export interface BuiltImagesOptions {
  cacheDir: string;
  store: BlobStore;
  /** Records written longer ago than this are ignored (the step cache's TTL). */
  ttlMs?: number;
  warn(message: string): void;
  now?: () => Date;
}

export class BuiltImages {
  private readonly dir: string;
  /**
   * Layer blobs found in the store during this run: the 20 images of a batch on one base ask for
   * the base's layers 20 times. A blob once in the store stays there while the run lasts.
   */
  private readonly present = new Map<Digest, Promise<boolean>>();

  constructor(private readonly options: BuiltImagesOptions) {
    this.dir = join(options.cacheDir, 'built-images');
  }

  private recordPath(key: string): string {
    return join(this.dir, `${key.replace(/^sha256:/, '')}.json`);
  }

  /**
   * Whether any image is recorded at all, for a caller that would start work early when nothing
   * can be reused (a cold cache); one directory read. A record may still be expired or incomplete.
   */
  async anyRecorded(signal: AbortSignal): Promise<boolean> {
    signal.throwIfAborted();
    let dir;
    try {
      dir = await opendir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    try {
      for (let entry = await dir.read(); entry !== null; entry = await dir.read()) if (entry.name.endsWith('.json')) return true;
      return false;
    } finally {
      await dir.close();
    }
  }

  /** The image recorded under `key`, with every blob of it in the store; undefined otherwise. */
  async lookup(key: string, signal: AbortSignal): Promise<Image | undefined> {
    let rec: BuiltImageRecord;
    try {
      signal.throwIfAborted();
      rec = parseRecord(readFileSync(this.recordPath(key), 'utf8'), key);
    } catch (e) {
      signal.throwIfAborted();
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.options.warn(`built images: ignoring the record for ${key} (${errorMessage(e)}); the image is built`);
      return undefined;
    }
    const now = (this.options.now ?? (() => new Date()))().getTime();
    if (this.options.ttlMs !== undefined && now - Date.parse(rec.writtenAt) > this.options.ttlMs) return undefined;
    const { store } = this.options;
    try {
      const manifestBytes = await readSmallBlob(store, rec.manifest.digest, signal);
      if (manifestBytes === undefined) return undefined;
      const configDigest = (JSON.parse(Buffer.from(manifestBytes).toString('utf8')) as { config?: { digest?: string } }).config?.digest;
      const configBytes = configDigest === undefined ? undefined : await readSmallBlob(store, parseDigest(configDigest), signal);
      if (configBytes === undefined) return undefined;
      const image = imageFromBytes({
        manifestBytes,
        configBytes,
        layer: (descriptor, diffId) => storeLayer(store, descriptor, diffId),
        source: `built image ${key}`,
        descriptorMediaType: rec.manifest.mediaType,
      });
      if (image.digest !== rec.manifest.digest) return undefined;
      const found = await Promise.all(image.layers.map((l) => this.inStore(l.descriptor.digest)));
      if (found.includes(false)) return undefined;
      return image;
    } catch (e) {
      signal.throwIfAborted();
      this.options.warn(`built images: cannot restore ${rec.manifest.digest} (${errorMessage(e)}); the image is built`);
      return undefined;
    }
  }

  private inStore(digest: Digest): Promise<boolean> {
    let p = this.present.get(digest);
    if (!p) {
      p = this.options.store.has(digest);
      this.present.set(digest, p);
      // Only a blob that is there is remembered: a missing one may be written by a build meanwhile.
      p.then((yes) => yes || this.present.delete(digest), () => this.present.delete(digest));
    }
    return p;
  }

  /** Keeps `image` under `key`: its manifest and config go into the store, then the record. */
  async record(key: string, image: Image, signal: AbortSignal): Promise<void> {
    try {
      const { store } = this.options;
      await store.write(image.configBytes, { expected: image.manifest.config.digest, signal });
      await store.write(image.manifestBytes, { expected: image.digest, signal });
      const rec: BuiltImageRecord = {
        version: RECORD_VERSION,
        key,
        manifest: { digest: image.digest, size: image.manifestBytes.length, mediaType: image.manifest.mediaType },
        writtenAt: (this.options.now ?? (() => new Date()))().toISOString(),
      };
      await mkdir(this.dir, { recursive: true });
      await writeFileAtomic(this.recordPath(key), `${JSON.stringify(rec)}\n`);
    } catch (e) {
      signal.throwIfAborted();
      this.options.warn(`built images: cannot record ${image.digest} (${errorMessage(e)}); the next run builds it again`);
    }
  }
}

function parseRecord(text: string, key: string): BuiltImageRecord {
  const r = JSON.parse(text) as Partial<BuiltImageRecord>;
  if (r.version !== RECORD_VERSION || r.key !== key || typeof r.writtenAt !== 'string' || Number.isNaN(Date.parse(r.writtenAt))) throw new Error('not a record of this version and key');
  const m = r.manifest;
  if (!m || typeof m.mediaType !== 'string' || typeof m.size !== 'number') throw new Error('no manifest descriptor');
  return { version: RECORD_VERSION, key, manifest: { digest: parseDigest(m.digest as string), size: m.size, mediaType: m.mediaType }, writtenAt: r.writtenAt };
}

/**
 * A manifest or config from the store (verified when stored); undefined when it is not there. Read
 * from the blob's file in one go, synchronously: a read stream allocates a 1 MiB buffer for these
 * few KB, and a warm rebuild reads two per image (20 images: ~15 ms of CPU, mostly garbage
 * collection); through fs.promises each of the four calls is a threadpool round trip.
 */
async function readSmallBlob(store: BlobStore, digest: Digest, signal: AbortSignal): Promise<Uint8Array | undefined> {
  signal.throwIfAborted();
  let fd;
  try {
    fd = openSync(store.pathOf(digest), 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > 4 * 1024 * 1024) return undefined;
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}
