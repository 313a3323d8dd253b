import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { isVerifiedFile, type Blob, type Image } from '../image/blob.js';
import { canonicalJson } from '../image/canonical.js';
import { digestHex, sha256Digest, type Digest } from '../image/digest.js';
import { bytesBlob, imageFromBytes, manifestDescriptor, toOciMediaTypes } from '../image/image.js';
import { isIndexMediaType, isManifestMediaType, MediaType } from '../image/media-types.js';
import { buildIndex } from '../image/mutate.js';
import { parseIndex, parseManifest, sniffManifestKind } from '../image/parse.js';
import { configPlatform, selectPlatform } from '../image/platform.js';
import type { Descriptor, ImageIndex, Platform } from '../image/types.js';
import { didYouMean } from '../util/levenshtein.js';
import { StowageError } from '../util/errors.js';
import { fileSize, readSmallFile, withLockFile, writeFileAtomic, writeVerifiedFile } from './atomic.js';
import { fileLayer } from './layers.js';
import { BatchSyncedBlobStore } from './blob-store.js';
import { checkLayoutTag } from './references.js';

/** The annotation that names an entry of a layout's index.json (its "tag"). */
export const REF_NAME = 'org.opencontainers.image.ref.name';

const LAYOUT_VERSION = '1.0.0';
/** Manifests and configs are small; refuse to slurp anything that claims to be one but is huge. */
const MAX_METADATA_BYTES = 16 * 1024 * 1024;
const MAX_INDEX_DEPTH = 4;

export { parseOciReference, type OciReference } from './references.js';

function blobPath(dir: string, digest: Digest): string {
  return join(dir, 'blobs', 'sha256', digestHex(digest));
}

/**
 * A blob already in the local store was verified when it was stored and is never modified: copy
 * the file in the kernel (a reflink where the filesystem can) instead of streaming and re-hashing
 * it. False when that is not possible (different filesystem rules, size changed): stream instead.
 */
async function copyTrustedFile(source: string, path: string, size: number, signal: AbortSignal | undefined): Promise<boolean> {
  signal?.throwIfAborted();
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    await copyFile(source, tmp, fsConstants.COPYFILE_FICLONE);
    if ((await fileSize(tmp)) !== size) throw new Error('size changed');
    await rename(tmp, path);
    return true;
  } catch {
    await rm(tmp, { force: true });
    return false;
  }
}

/** Copies a blob into the layout unless a file of the right size is already there. */
async function putBlob(dir: string, blob: Blob, signal: AbortSignal | undefined): Promise<void> {
  const { digest, size } = blob.descriptor;
  const path = blobPath(dir, digest);
  if ((await fileSize(path)) === size) return;
  if (isVerifiedFile(blob) && (await copyTrustedFile(blob.path, path, size, signal))) return;
  await writeVerifiedFile(await blob.open(signal), path, {
    expected: digest,
    expectedSize: size,
    tempPath: join(dir, `.stowage-tmp-${digestHex(digest).slice(0, 16)}-${process.pid}-${randomBytes(6).toString('hex')}`),
    ...(signal ? { signal } : {}),
  });
}

/** Is `dir` an empty or missing directory, or an OCI layout? Anything else we refuse to write into. */
async function checkWritableLayout(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new StowageError('store/not-a-layout', `${dir} is a file, not an OCI layout directory`, { hint: 'choose a directory for oci:<dir>' });
    }
    throw e;
  }
  // A layout another writer is creating right now may not have its oci-layout file yet, so a
  // directory holding only layout entries and our temp/lock files also counts.
  const layoutish = (n: string) =>
    n === 'blobs' || n === 'index.json' || n === 'oci-layout' || n.startsWith('.stowage-tmp-') || n.startsWith('.index.json') || n.startsWith('.oci-layout.tmp-');
  if (!names.includes('oci-layout') && !names.every(layoutish)) {
    throw new StowageError('store/not-a-layout', `${dir} is a non-empty directory without an oci-layout file`, {
      hint: 'write OCI layouts into a new or empty directory, or into an existing layout',
    });
  }
  if (!names.includes('oci-layout')) return;
  await removeStaleTemps(dir, names);
  const bytes = await readSmallFile(join(dir, 'oci-layout'), 4096, 'oci-layout file');
  let version: unknown;
  try {
    version = (JSON.parse(new TextDecoder().decode(bytes)) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch {
    version = undefined;
  }
  if (version !== LAYOUT_VERSION) {
    throw new StowageError('store/not-a-layout', `${dir}/oci-layout declares imageLayoutVersion ${JSON.stringify(version)}, expected ${LAYOUT_VERSION}`);
  }
}

/** Temp files of writers killed more than a day ago; younger ones may belong to a live writer. */
async function removeStaleTemps(dir: string, names: readonly string[]): Promise<void> {
  const cutoff = Date.now() - 24 * 60 * 60 * 1000;
  for (const name of names) {
    if (!name.startsWith('.stowage-tmp-') && !/^\.(index\.json|oci-layout)\.tmp-/.test(name)) continue;
    const path = join(dir, name);
    const s = await stat(path).catch(() => undefined);
    if (s !== undefined && s.mtimeMs < cutoff) await rm(path, { force: true });
  }
}

async function readLayoutIndex(dir: string): Promise<ImageIndex | undefined> {
  const path = join(dir, 'index.json');
  if ((await fileSize(path)) === undefined) return undefined;
  return parseIndex(await readSmallFile(path, MAX_METADATA_BYTES, 'index.json'), { source: path });
}

/**
 * The new index.json: entries named by one of `tags` are replaced by `entry`-with-that-tag, every
 * other entry is kept. With no tags, one unnamed entry is added unless the same digest is already
 * listed without a name.
 */
export function updateLayoutIndex(existing: ImageIndex | undefined, entry: Descriptor, tags: readonly string[]): ImageIndex {
  const base: ImageIndex = existing ?? { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
  const tagSet = new Set(tags);
  const kept = base.manifests.filter((d) => {
    const name = d.annotations?.[REF_NAME];
    return name === undefined ? !(tags.length === 0 && d.digest === entry.digest) : !tagSet.has(name);
  });
  const added =
    tags.length === 0
      ? [entry]
      : tags.map((tag) => ({ ...entry, annotations: { ...(entry.annotations ?? {}), [REF_NAME]: tag } }));
  return { ...base, mediaType: base.mediaType ?? MediaType.OciIndex, manifests: [...kept, ...added] };
}

/**
 * Adds `image` to the OCI image layout at `dir` under each of `tags`, creating the layout if needed.
 * Blobs go first (each verified and renamed into place), then index.json (temp + rename, under a
 * lock file so concurrent writers to one layout do not lose each other's tags). A crash therefore
 * never leaves an index entry whose blobs are missing. Docker-typed images are converted to OCI
 * media types first (tools built on containers/image ignore other entries). Returns the manifest
 * digest as written.
 */
export async function writeImageToLayout(
  dir: string,
  image: Image,
  options: { tags: readonly string[]; signal?: AbortSignal; concurrency?: number },
): Promise<Digest> {
  // containers/image (skopeo, podman, buildah) only sees OCI-typed entries in a layout.
  const oci = toOciMediaTypes(image);
  const entry = manifestDescriptor(oci, { platform: configPlatform(oci.config) });
  await writeToLayout(dir, [oci], entry, oci.manifestBytes, options);
  return oci.digest;
}

/**
 * Adds a multi-platform image to the layout: every image's blobs and manifest, then an OCI index
 * over them (platforms from their configs) that `tags` name. Returns the index digest.
 */
export async function writeIndexToLayout(
  dir: string,
  images: readonly Image[],
  options: { tags: readonly string[]; signal?: AbortSignal; concurrency?: number; annotations?: Record<string, string> },
): Promise<Digest> {
  const ociImages = images.map(toOciMediaTypes);
  const index = buildIndex(
    ociImages.map((img) => manifestDescriptor(img, { platform: configPlatform(img.config) })),
    { format: 'oci', ...(options.annotations ? { annotations: options.annotations } : {}) },
  );
  const bytes = canonicalJson(index);
  const entry: Descriptor = { mediaType: MediaType.OciIndex, digest: sha256Digest(bytes), size: bytes.byteLength };
  await writeToLayout(dir, ociImages, entry, bytes, options);
  return entry.digest;
}

/** Creates the layout at `dir` if needed (refusing a directory that is something else). */
async function prepareLayout(dir: string): Promise<void> {
  await checkWritableLayout(dir);
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const layoutFile = join(dir, 'oci-layout');
  if ((await fileSize(layoutFile)) === undefined) {
    await writeFileAtomic(layoutFile, canonicalJson({ imageLayoutVersion: LAYOUT_VERSION }));
  }
}

/**
 * A blob store over the layout's own `blobs/sha256`, so a pull can stream each blob once, straight
 * into the layout, instead of into the cache and then copying it. Blobs are verified before they
 * are renamed into place (temp files are `.stowage-tmp-*` beside index.json, which the layout
 * checks and stale-temp cleanup know); nothing is fsynced per blob — call `syncAll()` once before
 * `writeImageToLayout`, which then finds the blobs present and only writes manifests and the index.
 */
export async function openLayoutBlobStore(dir: string, options: { signal?: AbortSignal } = {}): Promise<BatchSyncedBlobStore> {
  options.signal?.throwIfAborted();
  await prepareLayout(dir);
  return new BatchSyncedBlobStore(dir, { blobDir: join(dir, 'blobs', 'sha256'), tmpDir: dir, tempPrefix: '.stowage-tmp-' });
}

async function writeToLayout(
  dir: string,
  images: readonly Image[],
  entry: Descriptor,
  entryBytes: Uint8Array,
  options: { tags: readonly string[]; signal?: AbortSignal; concurrency?: number },
): Promise<void> {
  const { signal } = options;
  for (const tag of options.tags) checkLayoutTag(tag, `oci:${dir}:${tag}`);
  await prepareLayout(dir);

  const blobs = new Map<Digest, Blob>();
  for (const image of images) {
    for (const layer of image.layers) blobs.set(layer.descriptor.digest, layer);
    blobs.set(image.manifest.config.digest, bytesBlob(image.manifest.config, image.configBytes));
  }
  const limit = pLimit(options.concurrency ?? 2);
  // Wait for every write to settle before failing: a sibling still streaming would otherwise leave
  // its temp file behind after we report the error.
  const results = await Promise.allSettled([...blobs.values()].map((b) => limit(() => putBlob(dir, b, signal))));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  // Manifests after the blobs they reference, the top-level entry last: each step only makes
  // reachable what is already complete.
  for (const image of images) {
    if (image.digest !== entry.digest) await putBlob(dir, bytesBlob(manifestDescriptor(image), image.manifestBytes), signal);
  }
  await putBlob(dir, bytesBlob(entry, entryBytes), signal);

  await withLockFile(
    join(dir, '.index.json.lock'),
    async () => {
      const next = updateLayoutIndex(await readLayoutIndex(dir), entry, options.tags);
      await writeFileAtomic(join(dir, 'index.json'), canonicalJson(next));
    },
    signal ? { signal } : {},
  );
}

/**
 * Removes a layout that a failed write created, unless it has become someone's output meanwhile:
 * decided under the index lock, it is removed only while it has no index.json and no other
 * writer's temp file. Returns whether it was removed. (A writer that is between two blobs and then
 * finds its layout gone fails loudly; it never publishes an index naming missing blobs.)
 */
export async function removeUnpublishedLayout(dir: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
  let removed = false;
  try {
    await withLockFile(
      join(dir, '.index.json.lock'),
      async () => {
        const names = await readdir(dir);
        if (names.includes('index.json') || names.some((n) => n.startsWith('.stowage-tmp-'))) return;
        await rm(dir, { recursive: true, force: true });
        removed = true;
      },
      options.signal ? { signal: options.signal } : {},
    );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return removed;
}

/** The ref names (tags) in a layout's index.json, in index order. */
export async function listLayoutTags(dir: string): Promise<string[]> {
  const index = await readLayoutIndexOrThrow(dir);
  return index.manifests.flatMap((d) => (d.annotations?.[REF_NAME] !== undefined ? [d.annotations[REF_NAME]] : []));
}

async function readLayoutIndexOrThrow(dir: string): Promise<ImageIndex> {
  const index = await readLayoutIndex(dir);
  if (index === undefined) {
    throw new StowageError('store/not-a-layout', `${dir} is not an OCI image layout (no index.json)`, {
      hint: 'oci:<dir> must name a directory written by stowage, skopeo, buildah or umoci',
    });
  }
  return index;
}

async function readBlobBytes(dir: string, d: Descriptor, what: string): Promise<Uint8Array> {
  if (d.size > MAX_METADATA_BYTES) throw new StowageError('store/too-large', `${what} ${d.digest} is ${d.size} bytes, too large for a ${what}`);
  const bytes = await readSmallFile(blobPath(dir, d.digest), MAX_METADATA_BYTES, `${what} ${d.digest}`);
  const digest = sha256Digest(bytes);
  if (digest !== d.digest || bytes.byteLength !== d.size) {
    throw new StowageError('store/digest-mismatch', `${what} blob ${d.digest} in ${dir} is corrupt (hashes to ${digest}, ${bytes.byteLength} bytes)`, {
      hint: 'the layout was modified or damaged; write it again',
    });
  }
  return bytes;
}

/**
 * Reads one image from the layout at `dir`: the entry named `tag`, or the only entry when no tag is
 * given. Indexes (also nested, as skopeo writes multi-platform images) are resolved to `platform`.
 * Layers are file-backed and streamed from the layout on demand; their files must exist.
 */
export async function readImageFromLayout(dir: string, options: { tag?: string; platform: Platform; signal?: AbortSignal }): Promise<Image> {
  options.signal?.throwIfAborted();
  const index = await readLayoutIndexOrThrow(dir);
  const tags = index.manifests.flatMap((d) => (d.annotations?.[REF_NAME] !== undefined ? [d.annotations[REF_NAME]] : []));
  let entries: Descriptor[];
  if (options.tag !== undefined) {
    entries = index.manifests.filter((d) => d.annotations?.[REF_NAME] === options.tag);
    if (entries.length === 0) {
      const guess = didYouMean(options.tag, tags);
      throw new StowageError('store/tag-not-found', `no image tagged ${JSON.stringify(options.tag)} in the OCI layout ${dir}`, {
        hint: guess ? `did you mean ${JSON.stringify(guess)}?` : tags.length > 0 ? `the layout has: ${tags.join(', ')}` : 'the layout has no tagged images',
      });
    }
  } else {
    entries = index.manifests;
    if (entries.length !== 1) {
      throw new StowageError('store/ambiguous-layout', `the OCI layout ${dir} holds ${entries.length} images; say which one`, {
        hint: tags.length > 0 ? `use oci:${dir}:<tag>, one of: ${tags.join(', ')}` : 'the layout has no images',
      });
    }
  }
  const first =
    entries.length === 1 ? entries[0]! : selectPlatform({ manifests: entries }, options.platform, `the OCI layout ${dir} tag ${options.tag ?? ''}`);
  return resolveEntry(dir, first, options.platform, 0);
}

async function resolveEntry(dir: string, d: Descriptor, platform: Platform, depth: number): Promise<Image> {
  if (depth > MAX_INDEX_DEPTH) throw new StowageError('store/index-too-deep', `indexes in ${dir} nest more than ${MAX_INDEX_DEPTH} deep`);
  let kind: 'manifest' | 'index' | 'unknown' = isIndexMediaType(d.mediaType) ? 'index' : isManifestMediaType(d.mediaType) ? 'manifest' : 'unknown';
  const bytes = await readBlobBytes(dir, d, kind === 'index' ? 'index' : 'manifest');
  if (kind === 'unknown') kind = sniffManifestKind(bytes);
  switch (kind) {
    case 'index': {
      const nested = parseIndex(bytes, { source: `${dir} blob ${d.digest}`, descriptorMediaType: d.mediaType });
      return resolveEntry(dir, selectPlatform(nested, platform, `the index ${d.digest} in ${dir}`), platform, depth + 1);
    }
    case 'manifest':
      return readManifestImage(dir, d, bytes);
    case 'unknown':
      throw new StowageError('store/unsupported-media-type', `${d.digest} in ${dir} has media type ${d.mediaType}, which is not an image`);
  }
}

async function readManifestImage(dir: string, d: Descriptor, manifestBytes: Uint8Array): Promise<Image> {
  const manifest = parseManifest(manifestBytes, { source: `${dir} blob ${d.digest}`, descriptorMediaType: d.mediaType });
  const configBytes = await readBlobBytes(dir, manifest.config, 'config');
  const image = imageFromBytes({
    manifestBytes,
    configBytes,
    descriptorMediaType: d.mediaType,
    source: `${dir} ${d.digest}`,
    layer: (ld, diffId) => fileLayer(blobPath(dir, ld.digest), ld, diffId),
  });
  for (const layer of image.layers) {
    const size = await fileSize(blobPath(dir, layer.descriptor.digest));
    if (size !== layer.descriptor.size) {
      throw new StowageError('store/blob-not-found', `layer ${layer.descriptor.digest} of ${d.digest} is ${size === undefined ? 'missing' : `${size} bytes, expected ${layer.descriptor.size}`} in ${dir}`, {
        hint: 'the layout is incomplete; copy the image into it again',
      });
    }
  }
  return image;
}
