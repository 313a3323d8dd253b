/**
 * The step cache a build consults before running a step: one flight per key per run (a second
 * stage or image computing the same key waits for the first), then the local index under
 * `<cacheDir>/step-cache/`, then the registry cache repository when one is configured.
 *
 * A cache problem is never a failed or wrong build: a corrupt local entry, a missing blob, a
 * registry that is down — each is a warning and the step simply runs. Entries made by a run are
 * written locally at once and pushed to the registry in the background (`flush` awaits them).
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Layer } from '../image/blob.js';
import type { BlobStore } from '../store/types.js';
import { writeFileAtomic } from '../store/atomic.js';
import { storeLayer } from '../store/layers.js';
import { errorMessage } from '../util/errors.js';
import { isExpired, parseEntry, type StepCacheEntry } from './entry.js';

export interface StepCacheHit {
  entry: StepCacheEntry;
  /** The restored layer (blob in the local store), when the step made one. */
  layer?: Layer;
  source: 'local' | 'remote' | 'this-run';
}

export interface StepCacheMiss {
  /** Stores what the step produced (local now, registry in the background) and wakes waiters. */
  record(entry: StepCacheEntry, layer: Layer | undefined): Promise<void>;
  /** The step failed or was not cacheable: waiters run it themselves. */
  abandon(): void;
}

/** What the stage runner calls. */
export interface StepCachePort {
  acquire(key: string, signal: AbortSignal): Promise<{ hit: StepCacheHit } | { miss: StepCacheMiss }>;
  /** Hit/miss of the local index only, without waiting or fetching (for `stowage plan`). */
  peekLocal?(key: string): Promise<boolean>;
}

/** The registry side (src/cache/registry-cache.ts), behind a port so the policy here stays testable. */
export interface RemoteStepCache {
  /** Undefined on a miss; throws when the registry cannot be asked (then the remote is switched off). */
  lookup(key: string, signal: AbortSignal): Promise<{ entry: StepCacheEntry; layer?: Layer } | undefined>;
  store(entry: StepCacheEntry, layer: Layer | undefined, signal: AbortSignal): Promise<void>;
  readonly description: string;
}

export interface StepCacheOptions {
  cacheDir: string;
  store: BlobStore;
  remote?: RemoteStepCache;
  /** Entries written longer ago than this are ignored. */
  ttlMs?: number;
  warn(message: string): void;
  now?: () => Date;
}

type Settled = StepCacheHit | undefined;

export class StepCache implements StepCachePort {
  private readonly dir: string;
  private readonly flights = new Map<string, Promise<Settled>>();
  private readonly pushes = new Set<Promise<void>>();
  private remote: RemoteStepCache | undefined;
  private readonly pushAbort = new AbortController();
  private pushWarned = false;

  constructor(private readonly options: StepCacheOptions) {
    this.dir = join(options.cacheDir, 'step-cache');
    this.remote = options.remote;
  }

  static indexPath(cacheDir: string, key: string): string {
    return join(cacheDir, 'step-cache', `${key.replace(/^sha256:/, '')}.json`);
  }

  async acquire(key: string, signal: AbortSignal): Promise<{ hit: StepCacheHit } | { miss: StepCacheMiss }> {
    // Someone in this run is already on it (or has finished it): wait for that flight.
    for (let existing = this.flights.get(key); existing !== undefined; existing = this.flights.get(key)) {
      const settled = await abortable(existing, signal);
      if (settled) return { hit: settled };
      // The owner abandoned: if nobody else claimed it since, it is ours.
      if (this.flights.get(key) === existing) this.flights.delete(key);
    }
    let resolve!: (s: Settled) => void;
    const flight = new Promise<Settled>((r) => (resolve = r));
    this.flights.set(key, flight);
    let found: StepCacheHit | undefined;
    try {
      found = (await this.lookupLocal(key, signal)) ?? (await this.lookupRemote(key, signal));
    } catch (e) {
      this.flights.delete(key);
      resolve(undefined);
      throw e;
    }
    if (found) {
      resolve(found);
      return { hit: found };
    }
    let done = false;
    return {
      miss: {
        record: async (entry, layer) => {
          if (done) return;
          done = true;
          resolve({ entry, ...(layer ? { layer } : {}), source: 'this-run' });
          await this.writeLocal(entry);
          this.pushInBackground(entry, layer);
        },
        abandon: () => {
          if (done) return;
          done = true;
          if (this.flights.get(key) === flight) this.flights.delete(key);
          resolve(undefined);
        },
      },
    };
  }

  async peekLocal(key: string): Promise<boolean> {
    return (await this.lookupLocal(key, new AbortController().signal, { quiet: true })) !== undefined;
  }

  /** Waits for the background pushes to the registry cache (a failure there is a warning). */
  async flush(): Promise<void> {
    while (this.pushes.size > 0) await Promise.allSettled([...this.pushes]);
  }

  /** Stops pending pushes (the build was aborted). */
  cancel(): void {
    this.pushAbort.abort();
  }

  private async lookupLocal(key: string, signal: AbortSignal, o: { quiet?: boolean } = {}): Promise<StepCacheHit | undefined> {
    const file = StepCache.indexPath(this.options.cacheDir, key);
    let text: string;
    try {
      text = await readFile(file, { encoding: 'utf8', signal });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      signal.throwIfAborted();
      if (!o.quiet) this.options.warn(`step cache: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}); the step runs`);
      return undefined;
    }
    const entry = parseEntry(text, key);
    if (typeof entry === 'string') {
      if (!o.quiet) {
        this.options.warn(`step cache: ignoring corrupt entry ${file} (${entry}); the step runs and the entry is rewritten`);
        await rm(file, { force: true }).catch(() => undefined);
      }
      return undefined;
    }
    if (isExpired(entry, this.options.ttlMs, this.now())) return undefined;
    if (!entry.layer) return { entry, source: 'local' };
    if (!(await this.options.store.has(entry.layer.descriptor.digest))) {
      // The blob was pruned or lost: the entry alone cannot restore the step.
      return undefined;
    }
    return { entry, layer: storeLayer(this.options.store, entry.layer.descriptor, entry.layer.diffId), source: 'local' };
  }

  private async lookupRemote(key: string, signal: AbortSignal): Promise<StepCacheHit | undefined> {
    const remote = this.remote;
    if (!remote) return undefined;
    let found;
    try {
      found = await remote.lookup(key, signal);
    } catch (e) {
      signal.throwIfAborted();
      if (this.remote === remote) {
        this.remote = undefined;
        this.options.warn(`registry cache ${remote.description} is not usable (${errorMessage(e)}); building without it`);
      }
      return undefined;
    }
    if (!found || isExpired(found.entry, this.options.ttlMs, this.now())) return undefined;
    // Known locally from now on, so the next run needs no registry round trip.
    await this.writeLocal(found.entry);
    return { entry: found.entry, ...(found.layer ? { layer: found.layer } : {}), source: 'remote' };
  }

  private async writeLocal(entry: StepCacheEntry): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true });
      const file = StepCache.indexPath(this.options.cacheDir, entry.key);
      await writeFileAtomic(file, `${JSON.stringify(entry)}\n`).catch(async (e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
    } catch (e) {
      this.options.warn(`step cache: cannot write an entry under ${this.dir} (${errorMessage(e)}); later builds will run this step again`);
    }
  }

  private pushInBackground(entry: StepCacheEntry, layer: Layer | undefined): void {
    const remote = this.remote;
    if (!remote) return;
    const p = remote.store(entry, layer, this.pushAbort.signal).catch((e: unknown) => {
      if (!this.pushWarned) {
        this.pushWarned = true;
        this.options.warn(`registry cache ${remote.description}: cannot store entries (${errorMessage(e)}); the build is not affected`);
      }
    });
    this.pushes.add(p);
    void p.finally(() => this.pushes.delete(p));
  }

  private now(): Date {
    return (this.options.now ?? (() => new Date()))();
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
