/**
 * Cache entries in a registry repository, as Kaniko stores them: one small image per step, tagged
 * by the key's hex (`<repo>:<hex>`), so any registry works and machines share a cache. The image
 * has the step's layer (or none) and a config that carries the entry in a label and the history.
 * `created` in the config is when the entry was written (the TTL's clock).
 */
import type { Image, Layer } from '../image/blob.js';
import { imageFromParts } from '../image/image.js';
import type { ImageConfig } from '../image/types.js';
import type { RegistryClient } from '../registry/client.js';
import { fetchImageMetadata, pullImage } from '../registry/pull.js';
import { parseReference, type Reference } from '../registry/reference.js';
import type { BlobStore } from '../store/types.js';
import { isStowageError, StowageError } from '../util/errors.js';
import { isExpired, parseEntry, type StepCacheEntry } from './entry.js';
import type { RemoteStepCache } from './step-cache.js';

/** The config label that holds the entry. */
export const ENTRY_LABEL = 'dev.stowage.step-cache.entry';

export interface RegistryCacheOptions {
  /** `host[:port]/repository` (no tag). */
  repo: string;
  client: RegistryClient;
  store: BlobStore;
  /** Pushes an image to `host/repo:tag` (the build's shared pusher: blobs cross the wire once). */
  push(image: Image, ref: string, signal: AbortSignal): Promise<void>;
}

export function createRegistryCache(o: RegistryCacheOptions): RemoteStepCache {
  const base = parseRepo(o.repo);
  const tagOf = (key: string) => key.replace(/^sha256:/, '');
  return {
    description: o.repo,
    async lookup(key, signal) {
      const ref: Reference = { registry: base.registry, repository: base.repository, tag: tagOf(key) };
      let image: Image;
      try {
        ({ image } = await pullImage(ref, { client: o.client, store: o.store, signal }));
      } catch (e) {
        // A missing tag is the normal miss; anything else means the cache cannot be asked.
        if (isStowageError(e) && e.code === 'registry/not-found') return undefined;
        throw e;
      }
      const entry = entryOf(image, key);
      if (entry === undefined) return undefined; // someone else's tag, or an older version: a miss
      const layer = image.layers[0];
      if (entry.layer && (!layer || layer.descriptor.digest !== entry.layer.descriptor.digest)) return undefined;
      return { entry, ...(entry.layer && layer ? { layer } : {}) };
    },
    async store(entry, layer, signal) {
      await o.push(entryImage(entry, layer), `${o.repo}:${tagOf(entry.key)}`, signal);
    },
  };
}

/**
 * Whether the cache repo holds an entry for `key`, judged from the entry image's manifest and config
 * alone (no layer is downloaded): what `stowage plan --resolve` asks for each step the local index
 * lacks. An entry older than `ttlMs` is a miss, as for the build. A registry that cannot be asked
 * throws; a missing tag or someone else's image is `false`.
 */
export async function registryCacheHas(
  o: Pick<RegistryCacheOptions, 'repo' | 'client' | 'store'> & { ttlMs?: number; now?: () => Date },
  key: string,
  signal: AbortSignal,
): Promise<boolean> {
  const base = parseRepo(o.repo);
  let image: Image;
  try {
    ({ image } = await fetchImageMetadata({ registry: base.registry, repository: base.repository, tag: key.replace(/^sha256:/, '') }, { client: o.client, store: o.store, signal }));
  } catch (e) {
    if (isStowageError(e) && e.code === 'registry/not-found') return false;
    throw e;
  }
  const entry = entryOf(image, key);
  return entry !== undefined && !isExpired(entry, o.ttlMs, (o.now ?? (() => new Date()))());
}

/** The entry an image tagged `key` stores, if it is a valid one of this version. */
function entryOf(image: Image, key: string): StepCacheEntry | undefined {
  const label = image.config.config?.Labels?.[ENTRY_LABEL];
  const entry = label === undefined ? 'no entry label' : parseEntry(label, key);
  return typeof entry === 'string' ? undefined : entry;
}

/** The image that stores one entry. */
export function entryImage(entry: StepCacheEntry, layer: Layer | undefined): Image {
  const config: ImageConfig = {
    created: entry.writtenAt,
    architecture: 'unknown',
    os: 'unknown',
    config: { Labels: { [ENTRY_LABEL]: JSON.stringify(entry) } },
    rootfs: { type: 'layers', diff_ids: layer ? [layer.diffId] : [] },
    history: [{ created: entry.created, created_by: entry.history?.createdBy ?? '', ...(layer ? {} : { empty_layer: true }) }],
  };
  return imageFromParts({ config, layers: layer ? [layer] : [], format: 'oci' });
}

function parseRepo(repo: string): { registry: string; repository: string } {
  let ref: Reference;
  try {
    ref = parseReference(repo);
  } catch (e) {
    throw new StowageError('usage/bad-cache-repo', `cache repository ${JSON.stringify(repo)} is not a repository reference`, {
      hint: 'write host[:port]/repository, e.g. registry.example.com/team/cache',
      cause: e,
    });
  }
  if (ref.digest !== undefined || (ref.tag !== undefined && repo.endsWith(`:${ref.tag}`))) {
    throw new StowageError('usage/bad-cache-repo', `cache repository ${JSON.stringify(repo)} must not have a tag or digest`, {
      hint: 'entries are tagged by their keys; write host[:port]/repository',
    });
  }
  return { registry: ref.registry, repository: ref.repository };
}
