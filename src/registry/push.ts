/**
 * Push with deduplication across images and repositories (REGISTRY.md §8.3).
 *
 * One `Pusher` per run holds per-registry state: which repos are known to hold each blob, and
 * single-flight maps keyed `up:<digest>` (the bytes cross the wire once per registry) and
 * `link:<repo>:<digest>` (a blob is linked into a repo once). The first repo that needs a blob is its
 * home and gets the upload; every other repo mounts it from a repo known to hold it.
 */
import { Readable, Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit, { type LimitFunction } from 'p-limit';
import { StowageError, isAbortError } from '../util/errors.js';
import type { Digest } from '../image/digest.js';
import { MANIFEST_ACCEPT } from '../image/media-types.js';
import type { ImageIndex } from '../image/types.js';
import { isMountable, type Blob, type Image } from '../image/blob.js';
import { scopesForPush } from './auth.js';
import { header, readBody, type RegistryClient, type RegistryResponse } from './client.js';
import { DEFAULT_RETRY_POLICY, httpError, isRetryableNetworkError, parseErrorBody, retryDelayMs, type RetryPolicy } from './errors.js';

/** A multi-platform image: an index whose children are the given images. */
export interface MultiPlatformImage {
  readonly index: ImageIndex;
  readonly indexBytes: Uint8Array;
  readonly digest: Digest;
  readonly images: readonly Image[];
}

export type PushRoot = Image | MultiPlatformImage;

export function isMultiPlatform(root: PushRoot): root is MultiPlatformImage {
  return (root as Partial<MultiPlatformImage>).index !== undefined;
}

export interface PushTarget {
  registry: string;
  repository: string;
  /** Tags to point at the root; with none, the root is pushed by digest only. */
  tags: readonly string[];
  root: PushRoot;
  /** Told the size of every piece of blob body this push sends (for progress; shared uploads count once, for the push that sent them). */
  onBytesSent?: (bytes: number) => void;
}

export interface PushResult {
  registry: string;
  repository: string;
  tags: readonly string[];
  digest: Digest;
}

export interface PushStats {
  /** Blobs whose bytes we sent (committed uploads). */
  blobsUploaded: number;
  /** Blobs linked by cross-repository mount. */
  blobsMounted: number;
  /** Blobs the registry already had in the target repo (HEAD 200, or implied by a tag already naming the image). */
  blobsPresent: number;
  /** Bytes sent in blob bodies, counting re-sends after failures. */
  bytesUploaded: number;
  /** HTTP exchanges, including pings, token fetches and retries. */
  requests: number;
  manifestsPut: number;
  /** Tags left alone because they already pointed at our digest (their image's blobs are then not checked). */
  tagsUnchanged: number;
}

export interface PusherOptions {
  client: RegistryClient;
  /** Concurrent blob operations per registry host (default 8). */
  concurrencyPerRegistry?: number;
  /** Blobs up to this size go in one streamed PUT, larger ones in PATCH chunks (default 2 GiB: one
   *  request per blob is fastest and every registry takes it; a 413 switches the host to chunks). */
  monolithicMaxBytes?: number;
  /** Chunk size for chunked uploads (default 16 MiB). */
  chunkBytes?: number;
  retry?: Partial<RetryPolicy>;
  random?: () => number;
}

interface RegistryState {
  /** Repos where a blob is known linked (HEAD 200, mount 201, our PUT 201). */
  present: Map<Digest, Set<string>>;
  /** Mount sources that refused (401/403/404/400): `<from>` → never try again this run. */
  mountBroken: Set<string>;
  inflight: Map<string, Promise<void>>;
  limit: LimitFunction;
  /** Set after a 413 on a monolithic PUT: this host wants smaller requests. */
  forceChunked: boolean;
  stats: PushStats;
}

function emptyStats(): PushStats {
  return { blobsUploaded: 0, blobsMounted: 0, blobsPresent: 0, bytesUploaded: 0, requests: 0, manifestsPut: 0, tagsUnchanged: 0 };
}

/** An in-memory blob (configs, manifests). */
export function bytesBlob(mediaType: string, digest: Digest, bytes: Uint8Array): Blob {
  return {
    descriptor: { mediaType, digest, size: bytes.length },
    open: async () => Readable.from([Buffer.from(bytes)]),
  };
}

function appendQuery(location: string, base: string, params: Record<string, string>): string {
  const u = new URL(location, base);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

/** How an upload begins: in a session a mount opened, and whether to ask (HEAD) before sending. */
interface UploadStart {
  session?: string;
  askFirst: boolean;
  onBytesSent?: (bytes: number) => void;
}

/** Thrown inside the upload loop to restart the whole blob sequence (new session). */
class RestartUpload extends Error {
  constructor(readonly reason: unknown) {
    super('restart upload');
  }
}

export class Pusher {
  private readonly client: RegistryClient;
  private readonly registries = new Map<string, RegistryState>();
  private readonly concurrency: number;
  private readonly monolithicMax: number;
  private readonly chunkBytes: number;
  private readonly policy: RetryPolicy;
  private readonly random: () => number;

  constructor(options: PusherOptions) {
    this.client = options.client;
    this.concurrency = options.concurrencyPerRegistry ?? 8;
    this.monolithicMax = options.monolithicMaxBytes ?? 2 * 1024 * 1024 * 1024;
    this.chunkBytes = options.chunkBytes ?? 16 * 1024 * 1024;
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.random = options.random ?? Math.random;
  }

  private state(registry: string): RegistryState {
    let s = this.registries.get(registry);
    if (!s) {
      s = { present: new Map(), mountBroken: new Set(), inflight: new Map(), limit: pLimit(this.concurrency), forceChunked: false, stats: emptyStats() };
      this.registries.set(registry, s);
    }
    return s;
  }

  /** Counters per registry for this run. */
  stats(): Record<string, PushStats> {
    const out: Record<string, PushStats> = {};
    for (const [reg, s] of this.registries) out[reg] = { ...s.stats };
    return out;
  }

  /** Pushes every target; shared blobs cross the wire once per registry. */
  async pushAll(targets: readonly PushTarget[], signal?: AbortSignal): Promise<PushResult[]> {
    return Promise.all(targets.map((t) => this.push(t, signal)));
  }

  async push(target: PushTarget, signal?: AbortSignal): Promise<PushResult> {
    const { registry, repository, root } = target;
    const state = this.state(registry);
    const result: PushResult = { registry, repository, tags: target.tags, digest: root.digest };
    const images = isMultiPlatform(root) ? root.images : [root];
    // Blobs: layers of every image, then configs (REGISTRY.md §7).
    const layers = new Map<Digest, Blob>();
    for (const img of images) for (const l of img.layers) if (!layers.has(l.descriptor.digest)) layers.set(l.descriptor.digest, l);
    const configs = new Map<Digest, Blob>();
    for (const img of images) configs.set(img.manifest.config.digest, bytesBlob(img.manifest.config.mediaType, img.manifest.config.digest, img.configBytes));
    const blobs = new Map([...layers, ...configs]);
    const rootBytes = isMultiPlatform(root) ? root.indexBytes : root.manifestBytes;
    const rootType = isMultiPlatform(root) ? root.index.mediaType : root.manifest.mediaType;

    // References first: one that already names this root proves the registry holds the image and
    // every blob of it in this repository (it accepts a manifest only once its blobs are linked), so
    // an unchanged image costs one HEAD per tag and no blob requests at all.
    const references = target.tags.length > 0 ? target.tags : [root.digest];
    const current = await Promise.all(references.map((r) => this.manifestDigest(state, registry, repository, r, signal)));
    const stale = references.filter((_, i) => current[i] !== root.digest);
    if (stale.length < references.length) {
      if (target.tags.length > 0) state.stats.tagsUnchanged += references.length - stale.length;
      for (const d of blobs.keys()) {
        if (state.present.get(d)?.has(repository)) continue;
        state.stats.blobsPresent++;
        this.markPresent(state, d, repository);
      }
    }
    if (stale.length === 0) return result;

    const progress = target.onBytesSent ? { onBytesSent: target.onBytesSent } : {};
    await Promise.all([...layers.values()].map((b) => this.ensureLinked(registry, repository, b, signal, progress)));
    // A config is a few KB and belongs to this image, which no reference here names: asking whether
    // the registry has it anyway costs a round trip that sending it does not.
    await Promise.all([...configs.values()].map((b) => this.ensureLinked(registry, repository, b, signal, { askFirst: false, ...progress })));
    // Then child manifests by digest, then the root by tag.
    if (isMultiPlatform(root)) {
      await Promise.all(images.map((img) => this.putManifest(registry, repository, img.digest, img.manifest.mediaType, img.manifestBytes, img.digest, blobs, signal)));
    }
    for (const reference of stale) await this.putManifest(registry, repository, reference, rootType, rootBytes, root.digest, blobs, signal);
    return result;
  }

  /** The digest `reference` (a tag or digest) names in `repository` now; undefined when none. */
  private async manifestDigest(state: RegistryState, registry: string, repository: string, reference: string, signal?: AbortSignal): Promise<Digest | undefined> {
    const res = await this.client.request(
      {
        registry,
        repository,
        action: `checking ${reference.startsWith('sha256:') ? 'manifest' : 'tag'} ${reference}`,
        method: 'HEAD',
        target: `/v2/${repository}/manifests/${reference}`,
        scopes: scopesForPush(repository),
        headers: { accept: MANIFEST_ACCEPT },
        followRedirects: false,
        expect: [200, 404],
        counter: state.stats,
      },
      signal,
    );
    res.body.resume();
    if (res.status !== 200) return undefined;
    return header(res, 'docker-content-digest') as Digest | undefined;
  }

  private singleFlight(state: RegistryState, key: string, fn: () => Promise<void>): Promise<void> {
    const existing = state.inflight.get(key);
    if (existing) return existing;
    const p = fn().finally(() => {
      if (state.inflight.get(key) === p) state.inflight.delete(key);
    });
    state.inflight.set(key, p);
    return p;
  }

  private markPresent(state: RegistryState, digest: Digest, repository: string): void {
    let s = state.present.get(digest);
    if (!s) state.present.set(digest, (s = new Set()));
    s.add(repository);
  }

  /**
   * Makes `blob` present in `repository`: already known → mount → upload (once per registry).
   * An upload first asks (HEAD) whether the registry has the blob, unless `askFirst` is false.
   */
  ensureLinked(registry: string, repository: string, blob: Blob, signal?: AbortSignal, options: { askFirst?: boolean; onBytesSent?: (bytes: number) => void } = {}): Promise<void> {
    const askFirst = options.askFirst ?? true;
    const progress = options.onBytesSent ? { onBytesSent: options.onBytesSent } : {};
    const state = this.state(registry);
    const digest = blob.descriptor.digest;
    return this.singleFlight(state, `link:${repository}:${digest}`, async () => {
      for (;;) {
        if (state.present.get(digest)?.has(repository)) return;
        const upload = state.inflight.get(`up:${digest}`);
        if (upload) {
          // Another repo is uploading these bytes: wait, then mount from it.
          // (singleFlight removes the key before the promise settles, so this cannot spin.)
          await upload.catch(() => {});
          continue;
        }
        const sources = [...(state.present.get(digest) ?? [])].filter((r) => r !== repository);
        if (isMountable(blob) && blob.source.registry === registry && blob.source.repository !== repository) sources.push(blob.source.repository);
        const from = sources.find((s) => !state.mountBroken.has(s));
        if (from !== undefined) {
          const outcome = await state.limit(() => this.mount(state, registry, repository, from, digest, signal));
          if (outcome.kind === 'mounted') {
            state.stats.blobsMounted++;
            this.markPresent(state, digest, repository);
            return;
          }
          if (outcome.kind === 'session') {
            // 202: the source did not have it; the registry opened an upload for us (never an error).
            return this.uploadFlight(state, registry, repository, blob, { session: outcome.location, askFirst: false, ...progress }, signal);
          }
          state.mountBroken.add(from);
          continue;
        }
        return this.uploadFlight(state, registry, repository, blob, { askFirst, ...progress }, signal);
      }
    });
  }

  private uploadFlight(state: RegistryState, registry: string, repository: string, blob: Blob, start: UploadStart, signal?: AbortSignal): Promise<void> {
    return this.singleFlight(state, `up:${blob.descriptor.digest}`, () =>
      state.limit(() => this.upload(state, registry, repository, blob, start, signal)),
    );
  }

  private async mount(
    state: RegistryState,
    registry: string,
    repository: string,
    from: string,
    digest: Digest,
    signal?: AbortSignal,
  ): Promise<{ kind: 'mounted' } | { kind: 'session'; location: string } | { kind: 'refused' }> {
    let res: RegistryResponse;
    try {
      res = await this.mountRequest(state, registry, repository, from, digest, signal);
    } catch (e) {
      // Docker Hub refuses a token whose scopes name a repo we may not pull (REGISTRY.md §5):
      // a mount is an optimisation, so fall back to uploading.
      if (e instanceof StowageError && (e.code === 'registry/unauthorized' || e.code === 'registry/denied')) return { kind: 'refused' };
      throw e;
    }
    res.body.resume();
    if (res.status === 201) return { kind: 'mounted' };
    if (res.status === 202 && header(res, 'location')) return { kind: 'session', location: new URL(header(res, 'location')!, res.url).toString() };
    return { kind: 'refused' };
  }

  private mountRequest(state: RegistryState, registry: string, repository: string, from: string, digest: Digest, signal?: AbortSignal): Promise<RegistryResponse> {
    return this.client.request(
      {
        registry,
        repository,
        action: `mounting blob ${digest} from ${from}`,
        method: 'POST',
        target: `/v2/${repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
        scopes: scopesForPush(repository, [from]),
        headers: { 'content-length': '0' },
        expect: [201, 202, 400, 401, 403, 404],
        counter: state.stats,
      },
      signal,
    );
  }

  private async headBlob(state: RegistryState, registry: string, repository: string, digest: Digest, signal?: AbortSignal): Promise<boolean> {
    const res = await this.client.request(
      {
        registry,
        repository,
        action: `checking blob ${digest}`,
        method: 'HEAD',
        target: `/v2/${repository}/blobs/${digest}`,
        scopes: scopesForPush(repository),
        followRedirects: false,
        expect: [200, 301, 302, 303, 307, 308, 404],
        counter: state.stats,
      },
      signal,
    );
    res.body.resume();
    return res.status !== 404;
  }

  private async openSession(state: RegistryState, registry: string, repository: string, signal?: AbortSignal): Promise<string> {
    const res = await this.client.request(
      {
        registry,
        repository,
        action: 'starting a blob upload',
        method: 'POST',
        target: `/v2/${repository}/blobs/uploads/`,
        scopes: scopesForPush(repository),
        headers: { 'content-length': '0' },
        expect: [202],
        counter: state.stats,
      },
      signal,
    );
    res.body.resume();
    const loc = header(res, 'location');
    if (!loc) {
      throw new StowageError('registry/protocol', `${registry}/${repository}: the registry opened an upload without a Location`, { hint: 'the registry does not follow the distribution spec' });
    }
    return new URL(loc, res.url).toString();
  }

  /** Opens the blob with a byte counter feeding the stats (and the push's progress). */
  private async countedStream(state: RegistryState, blob: Blob, onBytesSent: ((bytes: number) => void) | undefined, signal?: AbortSignal): Promise<Readable> {
    const src = await blob.open(signal);
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        state.stats.bytesUploaded += chunk.length;
        onBytesSent?.(chunk.length);
        cb(null, chunk);
      },
    });
    src.on('error', (e) => counter.destroy(e));
    return src.pipe(counter);
  }

  /**
   * HEAD (first time only) → POST → PUT, restarting the whole sequence on transient failures;
   * after a failed commit, HEAD first so we never re-send what the registry already has.
   */
  private async upload(state: RegistryState, registry: string, repository: string, blob: Blob, start: UploadStart, signal?: AbortSignal): Promise<void> {
    const digest = blob.descriptor.digest;
    let location = start.session;
    let checkFirst = start.askFirst;
    for (let attempt = 1; ; attempt++) {
      try {
        if (checkFirst && (await this.headBlob(state, registry, repository, digest, signal))) {
          if (attempt === 1) state.stats.blobsPresent++;
          else state.stats.blobsUploaded++; // our failed-looking commit had in fact landed
          this.markPresent(state, digest, repository);
          return;
        }
        location ??= await this.openSession(state, registry, repository, signal);
        const chunked = state.forceChunked || blob.descriptor.size > this.monolithicMax;
        const res = chunked
          ? await this.uploadChunked(state, registry, repository, blob, location, start.onBytesSent, signal)
          : await this.uploadMonolithic(state, registry, repository, blob, location, start.onBytesSent, signal);
        const got = header(res, 'docker-content-digest');
        if (got !== undefined && got.startsWith('sha256:') && got !== digest) {
          throw new StowageError('registry/digest-mismatch', `${registry}/${repository}: the registry stored blob ${digest} as ${got}`, {
            hint: 'the local blob does not match its digest (corrupted store?); clear the cache and rebuild',
          });
        }
        state.stats.blobsUploaded++;
        this.markPresent(state, digest, repository);
        return;
      } catch (e) {
        if (isAbortError(e) || signal?.aborted) throw e;
        const restart = e instanceof RestartUpload;
        const cause = restart ? e.reason : e;
        if (!restart && !isRetryableNetworkError(e)) throw e;
        if (attempt >= this.policy.maxAttempts) {
          if (cause instanceof StowageError) throw cause;
          throw new StowageError('registry/network', `${registry}/${repository}: uploading blob ${digest} failed after ${attempt} attempts`, {
            hint: `check the connection to ${registry}`,
            cause,
          });
        }
        // Abandon the old session (ignore failures) and start a new sequence.
        if (location) void this.cancelSession(state, registry, repository, location, signal);
        location = undefined;
        checkFirst = true;
        await sleep(retryDelayMs(attempt, this.policy, (e as { retryAfterMs?: number }).retryAfterMs, this.random()), undefined, signal ? { signal } : {});
      }
    }
  }

  private async cancelSession(state: RegistryState, registry: string, repository: string, location: string, signal?: AbortSignal): Promise<void> {
    try {
      const res = await this.client.request(
        { registry, repository, action: 'cancelling an upload', method: 'DELETE', target: location, scopes: scopesForPush(repository), retry: false, expect: [200, 202, 204, 400, 401, 403, 404, 405], counter: state.stats },
        signal,
      );
      res.body.resume();
    } catch {
      // best effort
    }
  }

  /** Statuses that mean "start this blob over": transient server trouble or a lost session. */
  private async commitOrRestart(state: RegistryState, res: RegistryResponse, okStatus: number): Promise<RegistryResponse> {
    if (res.status === okStatus) return res;
    const text = (await readBody(res.body, 64 * 1024).catch(() => Buffer.from(''))).toString('utf8');
    if (res.status === 413 || (res.status === 416 && /too large/i.test(text))) state.forceChunked = true;
    const retryAfter = header(res, 'retry-after');
    const err = new RestartUpload(Object.assign(new Error(`HTTP ${res.status}`), { status: res.status }));
    if (retryAfter && /^\d+$/.test(retryAfter)) Object.assign(err, { retryAfterMs: Number(retryAfter) * 1000 });
    throw err;
  }

  private async uploadMonolithic(state: RegistryState, registry: string, repository: string, blob: Blob, location: string, onBytesSent: ((bytes: number) => void) | undefined, signal?: AbortSignal): Promise<RegistryResponse> {
    const digest = blob.descriptor.digest;
    const res = await this.client.request(
      {
        registry,
        repository,
        action: `uploading blob ${digest}`,
        method: 'PUT',
        target: appendQuery(location, location, { digest }),
        scopes: scopesForPush(repository),
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.descriptor.size) },
        body: () => this.countedStream(state, blob, onBytesSent, signal),
        retry: false,
        // A commit can take long on big blobs (REGISTRY.md §8.4).
        headersTimeoutMs: 15 * 60_000,
        expect: [201, 404, 408, 413, 416, 429, 500, 502, 503, 504],
        counter: state.stats,
      },
      signal,
    );
    const ok = await this.commitOrRestart(state, res, 201);
    ok.body.resume();
    return ok;
  }

  private async uploadChunked(state: RegistryState, registry: string, repository: string, blob: Blob, location: string, onBytesSent: ((bytes: number) => void) | undefined, signal?: AbortSignal): Promise<RegistryResponse> {
    const digest = blob.descriptor.digest;
    const size = blob.descriptor.size;
    const chunkSize = state.forceChunked ? Math.min(this.chunkBytes, 4 * 1024 * 1024) : this.chunkBytes;
    const src = await blob.open(signal);
    let loc = location;
    let offset = 0;
    try {
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const sendChunk = async (chunk: Buffer) => {
        const res = await this.client.request(
          {
            registry,
            repository,
            action: `uploading blob ${digest}`,
            method: 'PATCH',
            target: loc,
            scopes: scopesForPush(repository),
            headers: {
              'content-type': 'application/octet-stream',
              'content-length': String(chunk.length),
              'content-range': `${offset}-${offset + chunk.length - 1}`,
            },
            body: chunk,
            // Never replay a PATCH blindly (REGISTRY.md §9): restart the sequence instead.
            retry: false,
            expect: [202, 404, 408, 413, 416, 429, 500, 502, 503, 504],
            counter: state.stats,
          },
          signal,
        );
        const ok = await this.commitOrRestart(state, res, 202);
        ok.body.resume();
        state.stats.bytesUploaded += chunk.length;
        onBytesSent?.(chunk.length);
        offset += chunk.length;
        loc = new URL(header(ok, 'location') ?? loc, ok.url).toString();
      };
      for await (const c of src) {
        pending.push(c as Buffer);
        pendingBytes += (c as Buffer).length;
        while (pendingBytes >= chunkSize) {
          const all = Buffer.concat(pending);
          await sendChunk(all.subarray(0, chunkSize));
          pending = [all.subarray(chunkSize)];
          pendingBytes = all.length - chunkSize;
        }
      }
      if (pendingBytes > 0) await sendChunk(Buffer.concat(pending));
    } finally {
      src.destroy();
    }
    if (offset !== size) {
      throw new StowageError('registry/size-mismatch', `blob ${digest} has ${offset} bytes locally, its descriptor says ${size}`, { hint: 'the local store is corrupted; clear the cache and rebuild' });
    }
    const res = await this.client.request(
      {
        registry,
        repository,
        action: `committing blob ${digest}`,
        method: 'PUT',
        target: appendQuery(loc, loc, { digest }),
        scopes: scopesForPush(repository),
        headers: { 'content-length': '0' },
        retry: false,
        headersTimeoutMs: 15 * 60_000,
        expect: [201, 404, 408, 429, 500, 502, 503, 504],
        counter: state.stats,
      },
      signal,
    );
    const ok = await this.commitOrRestart(state, res, 201);
    ok.body.resume();
    return ok;
  }

  /**
   * PUTs manifest bytes. On 400 MANIFEST_BLOB_UNKNOWN (a blob we believed linked is gone, e.g.
   * garbage-collected meanwhile) the named blobs are linked again and the PUT retried once.
   */
  private async putManifest(
    registry: string,
    repository: string,
    reference: string,
    mediaType: string,
    bytes: Uint8Array,
    digest: Digest,
    blobs: ReadonlyMap<Digest, Blob>,
    signal?: AbortSignal,
  ): Promise<void> {
    const state = this.state(registry);
    for (let attempt = 1; ; attempt++) {
      const missing = await state.limit(async () => {
        const res = await this.client.request(
          {
            registry,
            repository,
            action: `pushing manifest ${reference}`,
            method: 'PUT',
            target: `/v2/${repository}/manifests/${reference}`,
            scopes: scopesForPush(repository),
            headers: { 'content-type': mediaType },
            body: bytes,
            expect: attempt === 1 ? [201, 400] : [201],
            counter: state.stats,
          },
          signal,
        );
        if (res.status === 400) {
          const text = (await readBody(res.body, 64 * 1024).catch(() => Buffer.from(''))).toString('utf8');
          const body = parseErrorBody(text);
          const unknown = (body?.errors ?? [])
            .filter((e) => e.code === 'MANIFEST_BLOB_UNKNOWN')
            .map((e) => (typeof e.detail === 'string' ? e.detail : (e.detail as { digest?: string } | undefined)?.digest))
            .filter((d): d is string => typeof d === 'string' && blobs.has(d as Digest)) as Digest[];
          if (unknown.length === 0) throw httpError({ registry, repository, action: `pushing manifest ${reference}` }, 400, text, header(res, 'content-type'));
          return unknown;
        }
        res.body.resume();
        const got = header(res, 'docker-content-digest');
        if (got !== undefined && got !== digest) {
          throw new StowageError('registry/digest-mismatch', `${registry}/${repository}: the registry stored manifest ${reference} as ${got}, expected ${digest}`, {
            hint: 'the registry rewrote the manifest; it may not support this media type',
          });
        }
        state.stats.manifestsPut++;
        return [];
      });
      if (missing.length === 0) return;
      // Outside the limit: relinking needs slots of its own.
      for (const d of missing) state.present.get(d)?.delete(repository);
      await Promise.all(missing.map((d) => this.ensureLinked(registry, repository, blobs.get(d)!, signal)));
    }
  }
}

/** Pushes one image (or index) to one repository with a fresh Pusher; returns the result and stats. */
export async function pushImage(
  root: PushRoot,
  target: { registry: string; repository: string; tags: readonly string[] },
  options: PusherOptions & { signal?: AbortSignal },
): Promise<PushResult & { stats: PushStats }> {
  const pusher = new Pusher(options);
  const result = await pusher.push({ ...target, root }, options.signal);
  return { ...result, stats: pusher.stats()[target.registry] ?? emptyStats() };
}
