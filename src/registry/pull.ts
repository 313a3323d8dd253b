/**
 * Pull: resolve a reference to a manifest (full Accept list), choose the platform from an index,
 * and fetch config and layers into a BlobStore, verifying every digest while streaming and resuming
 * interrupted downloads with Range where the registry allows it (REGISTRY.md §8.6).
 */
import { createHash } from 'node:crypto';
import type { WriteStream } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { StowageError, isAbortError } from '../util/errors.js';
import { digestHex, isDigest, sha256Digest, type Digest } from '../image/digest.js';
import { MANIFEST_ACCEPT, isIndexMediaType, isManifestMediaType } from '../image/media-types.js';
import type { Descriptor, Platform } from '../image/types.js';
import type { Image, Layer, MountableBlob, VerifiedFileBlob } from '../image/blob.js';
import { imageFromBytes } from '../image/image.js';
import { parseIndex, parseManifest } from '../image/parse.js';
import { formatPlatform, hostPlatform, isAttestation, matchPlatform } from '../image/platform.js';
import { isBatchSynced, type BlobStore } from '../store/types.js';
import { repositoryScope } from './auth.js';
import { header, mirrorsApply, readBody, type RegistryClient } from './client.js';
import {
  DEFAULT_RETRY_POLICY,
  MAX_MANIFEST_BYTES,
  digestMismatch,
  isRetryableNetworkError,
  manifestTooLarge,
  networkError,
  noMatchingPlatform,
  retryDelayMs,
  sizeMismatch,
  type RegistryErrorContext,
} from './errors.js';
import { manifestIdentifier, type Reference } from './reference.js';

export interface FetchedManifest {
  digest: Digest;
  mediaType: string;
  bytes: Uint8Array;
}

/** Where a repository's content is fetched from: the registry itself or a docker.io mirror. */
interface Endpoint {
  registry: string;
  repository: string;
}

function ctxOf(e: Endpoint, action: string): RegistryErrorContext {
  return { registry: e.registry, repository: e.repository, action };
}

function pullScopes(repository: string): string[] {
  return [repositoryScope(repository, ['pull'])];
}

/** Mirrors first (docker.io only), then the registry itself. */
function endpointsFor(client: RegistryClient, ref: Pick<Reference, 'registry' | 'repository'>): Endpoint[] {
  const own = { registry: ref.registry, repository: ref.repository };
  if (!mirrorsApply(ref.registry)) return [own];
  return [...client.mirrors.map((m) => ({ registry: m.name, repository: ref.repository })), own];
}

/** Tries each endpoint in order; the last endpoint's error is what the user sees. */
async function firstSuccessful<T>(endpoints: Endpoint[], fn: (e: Endpoint) => Promise<T>, signal?: AbortSignal): Promise<T> {
  let lastError: unknown;
  for (const e of endpoints) {
    try {
      return await fn(e);
    } catch (err) {
      if (isAbortError(err) || signal?.aborted) throw err;
      // Integrity failures are never papered over by trying elsewhere.
      if (err instanceof StowageError && (err.code === 'registry/digest-mismatch' || err.code === 'registry/manifest-too-large')) throw err;
      lastError = err;
    }
  }
  throw lastError;
}

async function fetchManifestAt(client: RegistryClient, e: Endpoint, identifier: string, expected: Digest | undefined, signal?: AbortSignal): Promise<FetchedManifest> {
  const ctx = ctxOf(e, `fetching manifest ${identifier}`);
  const res = await client.request(
    {
      registry: e.registry,
      repository: e.repository,
      action: ctx.action,
      method: 'GET',
      target: `/v2/${e.repository}/manifests/${identifier}`,
      scopes: pullScopes(e.repository),
      headers: { accept: MANIFEST_ACCEPT },
      expect: [200],
    },
    signal,
  );
  const declared = Number(header(res, 'content-length'));
  if (Number.isFinite(declared) && declared > MAX_MANIFEST_BYTES) {
    res.body.destroy();
    throw manifestTooLarge(ctx, declared);
  }
  const bytes = await readBody(res.body, MAX_MANIFEST_BYTES, () => manifestTooLarge(ctx, undefined));
  const actual = sha256Digest(bytes);
  const want = expected ?? (header(res, 'docker-content-digest') as Digest | undefined);
  if (want !== undefined && want.startsWith('sha256:') && want !== actual) throw digestMismatch(ctx, want, actual);
  const mediaType = manifestMediaType(bytes, header(res, 'content-type'), e, identifier);
  return { digest: actual, mediaType, bytes: new Uint8Array(bytes) };
}

/** The media type a manifest declares, else the Content-Type, else inferred from its shape (OCI may omit it). */
function manifestMediaType(bytes: Uint8Array, contentType: string | undefined, e: Endpoint, identifier: string): string {
  let mediaType = (contentType ?? '').split(';')[0]!.trim();
  try {
    const parsed = JSON.parse(Buffer.from(bytes).toString('utf8')) as { mediaType?: string; manifests?: unknown };
    if (typeof parsed.mediaType === 'string') return parsed.mediaType;
    if (!isIndexMediaType(mediaType) && !isManifestMediaType(mediaType)) {
      mediaType = Array.isArray(parsed.manifests) ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json';
    }
    return mediaType;
  } catch {
    throw new StowageError('registry/invalid-manifest', `${e.registry}/${e.repository}: manifest ${identifier} is not valid JSON`, {
      hint: 'the registry returned something that is not an image manifest',
    });
  }
}

/** Manifest bytes already in the local store (content-addressed, so verified when written). */
async function cachedManifest(cache: BlobStore, digest: Digest, e: Endpoint, signal?: AbortSignal): Promise<FetchedManifest | undefined> {
  if (!(await cache.has(digest))) return undefined;
  const bytes = await readBody(await cache.openRead(digest, signal), MAX_MANIFEST_BYTES, () => manifestTooLarge(ctxOf(e, `reading cached manifest ${digest}`), undefined));
  return { digest, mediaType: manifestMediaType(bytes, undefined, e, digest), bytes: new Uint8Array(bytes) };
}

/**
 * With a cache: a tag is resolved with HEAD (full Accept list) and the manifest read locally when
 * its digest is already there (HEADs do not count against Docker Hub's pull quota), else fetched
 * by digest. Without one: a single GET.
 */
async function resolveAt(client: RegistryClient, e: Endpoint, ref: Reference, cache: BlobStore | undefined, signal?: AbortSignal): Promise<FetchedManifest> {
  if (cache && ref.digest !== undefined) {
    const hit = await cachedManifest(cache, ref.digest, e, signal);
    if (hit) return hit;
  }
  if (cache && ref.digest === undefined) {
    const identifier = manifestIdentifier(ref);
    const res = await client.request(
      {
        registry: e.registry,
        repository: e.repository,
        action: `resolving ${identifier}`,
        method: 'HEAD',
        target: `/v2/${e.repository}/manifests/${identifier}`,
        scopes: pullScopes(e.repository),
        headers: { accept: MANIFEST_ACCEPT },
        followRedirects: false,
        expect: [200, 301, 302, 303, 307, 308, 404],
      },
      signal,
    );
    res.body.resume();
    const d = header(res, 'docker-content-digest');
    if (res.status === 200 && d !== undefined && isDigest(d)) {
      return (await cachedManifest(cache, d, e, signal)) ?? fetchManifestAt(client, e, d, d, signal);
    }
  }
  return fetchManifestAt(client, e, manifestIdentifier(ref), ref.digest, signal);
}

/**
 * The manifest or index a reference names. A digest in the reference pins it; otherwise the tag is
 * resolved with the full Accept list (a partial list gets schema1 rewrites, REGISTRY.md §8).
 */
export async function fetchManifest(client: RegistryClient, ref: Reference, signal?: AbortSignal, cache?: BlobStore): Promise<FetchedManifest> {
  return firstSuccessful(endpointsFor(client, ref), (e) => resolveAt(client, e, ref, cache, signal), signal);
}

// ---- blobs ----

export interface FetchBlobOptions {
  signal?: AbortSignal;
  /** Attempts for a blob download, counting resumes (default 5). */
  maxAttempts?: number;
}

/**
 * Streams one blob into the store, verifying size and digest while streaming. A connection that
 * breaks mid-body is resumed with `Range: bytes=<received>-` (206), or restarted when the registry
 * ignores ranges. Nothing is stored unless every byte matched.
 */
export async function fetchBlob(client: RegistryClient, ref: Pick<Reference, 'registry' | 'repository'>, desc: Descriptor, store: BlobStore, options: FetchBlobOptions = {}): Promise<void> {
  const { signal } = options;
  const present = await store.stat(desc.digest);
  if (present !== undefined && present.size === desc.size) return;
  await firstSuccessful(endpointsFor(client, ref), (e) => fetchBlobAt(client, e, desc, store, options), signal);
}

/** The registry ignored our Range header: the blob must be fetched again from byte 0. */
class RangeIgnored extends Error {}

/** Response bodies are read in large slices: fewer, bigger chunks through hash and write. */
const BODY_HIGH_WATER_MARK = 1024 * 1024;

/**
 * One pass over the bytes: each chunk of the response body is hashed and handed to the temp
 * file's write stream (which batches them into writev calls); the temp file is renamed into the
 * store only after size and digest matched.
 */
async function fetchBlobAt(client: RegistryClient, e: Endpoint, desc: Descriptor, store: BlobStore, options: FetchBlobOptions): Promise<void> {
  const { signal } = options;
  const maxAttempts = options.maxAttempts ?? DEFAULT_RETRY_POLICY.maxAttempts;
  const ctx = ctxOf(e, `downloading blob ${desc.digest}`);
  const hash = createHash('sha256');
  let received = 0;
  const tmp = store.tempPath(digestHex(desc.digest).slice(0, 16));
  const fh = await open(tmp, 'wx', 0o644);
  // fsync before close (`flush`), unless the store makes the whole batch durable at once later.
  const out = fh.createWriteStream({ highWaterMark: BODY_HIGH_WATER_MARK, flush: !isBatchSynced(store) });
  let adopted = false;
  try {
    for (let attempt = 1; ; attempt++) {
      const resuming = received > 0;
      const res = await client.request(
        {
          registry: e.registry,
          repository: e.repository,
          action: ctx.action,
          method: 'GET',
          target: `/v2/${e.repository}/blobs/${desc.digest}`,
          scopes: pullScopes(e.repository),
          headers: resuming ? { range: `bytes=${received}-` } : {},
          expect: resuming ? [200, 206] : [200],
          bodyHighWaterMark: BODY_HIGH_WATER_MARK,
        },
        signal,
      );
      if (resuming && res.status === 200) {
        // The bytes already written cannot be un-sent; start over with a fresh temp file.
        res.body.destroy();
        throw new RangeIgnored();
      }
      try {
        await copyBody(res.body, out, (b) => {
          received += b.length;
          if (received > desc.size) throw sizeMismatch(ctx, desc.size, received);
          hash.update(b);
        });
        break;
      } catch (err) {
        res.body.destroy();
        if (err instanceof StowageError || isAbortError(err) || signal?.aborted || out.errored) throw err;
        if (!isRetryableNetworkError(err) && !(err instanceof Error && /terminated|aborted/i.test(err.message))) throw err;
        if (attempt >= maxAttempts) throw networkError(ctx, err, attempt);
        await sleep(retryDelayMs(attempt, DEFAULT_RETRY_POLICY, undefined, Math.random()) / 10, undefined, signal ? { signal } : {});
      }
    }
    if (received !== desc.size) throw sizeMismatch(ctx, desc.size, received);
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== desc.digest) throw digestMismatch(ctx, desc.digest, actual);
    out.end();
    await finished(out); // written, fsynced (see `flush`) and closed
    await store.adopt(tmp, { digest: desc.digest, size: desc.size });
    adopted = true;
  } catch (err) {
    if (err instanceof RangeIgnored) {
      await discard(out, fh, tmp);
      return fetchBlobAt(client, e, desc, store, { ...options, maxAttempts: Math.max(1, maxAttempts - 1) });
    }
    throw err;
  } finally {
    if (!adopted) await discard(out, fh, tmp);
  }
}

/**
 * Moves a response body into `out` chunk by chunk as the socket delivers them ('data' events: no
 * re-concatenation of buffered chunks, no promise per chunk), pausing the body while `out` is
 * full. `inspect` sees every chunk first and may throw to stop.
 */
function copyBody(body: Readable, out: WriteStream, inspect: (chunk: Buffer) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      body.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      out.off('error', onError).off('drain', onDrain);
    };
    const fail = (err: unknown) => {
      cleanup();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      try {
        inspect(chunk);
      } catch (err) {
        fail(err);
        return;
      }
      if (!out.write(chunk)) body.pause();
    };
    const onDrain = () => body.resume();
    const onEnd = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => fail(err);
    // A body destroyed without an error (aborted) never ends: treat as a cut connection.
    const onClose = () => fail(Object.assign(new Error('the response body was closed before its end (terminated)'), { code: 'UND_ERR_SOCKET' }));
    body.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose);
    out.on('drain', onDrain).once('error', onError);
  });
}

/** Closes and removes a temp file that will not become a blob (idempotent). */
async function discard(out: WriteStream, fh: FileHandle, tmp: string): Promise<void> {
  out.destroy();
  await finished(out).catch(() => {});
  await fh.close().catch(() => {});
  await rm(tmp, { force: true });
}

// ---- images ----

/** A layer stored locally whose origin repository is known, so a push can mount it. */
class StoredLayer implements Layer, MountableBlob, VerifiedFileBlob {
  /** Fetched with its digest verified into the store, which never modifies it. */
  readonly verified = true as const;
  constructor(
    readonly descriptor: Descriptor,
    readonly diffId: Digest,
    readonly source: { registry: string; repository: string },
    private readonly store: BlobStore,
  ) {}
  get path(): string {
    return this.store.pathOf(this.descriptor.digest);
  }
  open(signal?: AbortSignal): Promise<Readable> {
    return this.store.openRead(this.descriptor.digest, signal);
  }
}

export interface PullOptions {
  client: RegistryClient;
  store: BlobStore;
  /** Platform to choose from an index; defaults to the host's. */
  platform?: Platform;
  /** Parallel blob downloads (default 6). */
  concurrency?: number;
  /**
   * Keep the manifests in the store and answer a tag's manifest from it after a HEAD (default
   * true: the store is a cache). False when the store is a destination (an OCI layout), which must
   * hold only what its index refers to.
   */
  cacheManifests?: boolean;
  signal?: AbortSignal;
}

export interface PulledImage {
  image: Image;
  /** Digest of what the reference resolved to (the index digest for multi-platform images). */
  resolvedDigest: Digest;
}

/**
 * An image's manifest (platform chosen from an index) and config, verified, the config written to
 * the store — what a cache key needs of a base image (its digest and config), without its layers.
 * The manifests are not cached here: a cached manifest promises its blobs are in the store.
 */
export async function fetchImageMetadata(
  ref: Reference,
  options: Pick<PullOptions, 'client' | 'store' | 'platform' | 'cacheManifests' | 'signal'>,
): Promise<{ image: Image; top: FetchedManifest; manifest: FetchedManifest; parsed: ReturnType<typeof parseManifest> }> {
  const { client, store, signal } = options;
  const manifestCache = (options.cacheManifests ?? true) ? store : undefined;
  const top = await fetchManifest(client, ref, signal, manifestCache);
  let manifest = top;
  const where = `${ref.registry}/${ref.repository}`;
  if (isIndexMediaType(top.mediaType)) {
    const index = parseIndex(top.bytes, { source: `${where} ${manifestIdentifier(ref)}`, descriptorMediaType: top.mediaType });
    const wanted = options.platform ?? hostPlatform();
    const chosen = matchPlatform(index, wanted);
    if (!chosen) {
      const available = [...new Set(index.manifests.filter((m) => m.platform && !isAttestation(m)).map((m) => formatPlatform(m.platform!)))];
      throw noMatchingPlatform({ registry: ref.registry, repository: ref.repository, action: `pulling ${manifestIdentifier(ref)}` }, formatPlatform(wanted), available);
    }
    manifest = await fetchManifest(client, { registry: ref.registry, repository: ref.repository, digest: chosen.digest }, signal, manifestCache);
    if (!isManifestMediaType(manifest.mediaType)) {
      throw new StowageError('registry/unsupported-manifest', `${where}: platform entry ${chosen.digest} is a ${manifest.mediaType}, not an image manifest`, {
        hint: 'nested indexes are not supported; pull the child by digest',
      });
    }
  } else if (!isManifestMediaType(top.mediaType)) {
    throw new StowageError('registry/unsupported-manifest', `${where}: ${manifestIdentifier(ref)} is a ${top.mediaType}, not an image`, {
      hint: 'stowage pulls OCI and Docker schema 2 images; schema 1 and artifacts are not supported',
    });
  }
  const parsed = parseManifest(manifest.bytes, { source: `${where}@${manifest.digest}`, descriptorMediaType: manifest.mediaType });
  const source = { registry: ref.registry, repository: ref.repository };

  await fetchBlob(client, ref, parsed.config, store, signal ? { signal } : {});
  const configBytes = new Uint8Array(await readBody(await store.openRead(parsed.config.digest, signal), MAX_MANIFEST_BYTES * 4));
  // Validates config against manifest (digest, diff_ids count) before any layer is fetched.
  const image = imageFromBytes({
    manifestBytes: manifest.bytes,
    configBytes,
    layer: (d, diffId) => new StoredLayer(d, diffId, source, store),
    source: `${where}@${manifest.digest}`,
    descriptorMediaType: manifest.mediaType,
  });

  return { image, top, manifest, parsed };
}

/**
 * Pulls a single-platform image: manifest (platform chosen from an index), config and layers, all
 * verified and written to the store. The returned layers read from the store and are mountable
 * from their source repository.
 */
export async function pullImage(ref: Reference, options: PullOptions): Promise<PulledImage> {
  const { client, store, signal } = options;
  const cacheManifests = options.cacheManifests ?? true;
  const { image, top, manifest, parsed } = await fetchImageMetadata(ref, options);
  const limit = Math.max(1, options.concurrency ?? 6);

  // Bounded parallel downloads; the first failure aborts the rest, and the pull fails only after
  // every download has stopped and removed its temp file (a caller that exits at once must not
  // leave a half-written blob behind).
  const inner = new AbortController();
  const onAbort = () => inner.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    let next = 0;
    let failure: { error: unknown } | undefined;
    const worker = async () => {
      while (next < parsed.layers.length && failure === undefined) {
        const layer = parsed.layers[next++]!;
        try {
          await fetchBlob(client, ref, layer, store, { signal: inner.signal });
        } catch (error) {
          failure ??= { error };
          inner.abort();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, parsed.layers.length) }, worker));
    if (failure !== undefined) throw failure.error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  // Manifests last, so a cached manifest always means its blobs are cached too.
  if (cacheManifests) {
    await store.write(manifest.bytes, { expected: manifest.digest, ...(signal ? { signal } : {}) });
    if (top !== manifest) await store.write(top.bytes, { expected: top.digest, ...(signal ? { signal } : {}) });
  }

  return { image, resolvedDigest: top.digest };
}
