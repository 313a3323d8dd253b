/**
 * A step cache entry: what a step produced, so a hit can restore it without running the step —
 * the layer (descriptor + diffId; the blob lives in the blob store) or no layer, the config patch,
 * the history entry, and when it was made. Pure: encoding and validation only.
 */
import type { Descriptor, ContainerConfig } from '../image/types.js';
import { parseDigest, type Digest } from '../image/digest.js';
import { CACHE_KEY_VERSION } from './keys.js';
import { StowageError } from '../util/errors.js';

export interface StepCacheEntry {
  version: typeof CACHE_KEY_VERSION;
  key: string;
  layer?: { descriptor: Descriptor; diffId: Digest };
  /** Config fields the step set; `removed` lists those it deleted (JSON has no `undefined`). */
  configPatch?: { set: Partial<ContainerConfig>; removed: string[] };
  author?: string;
  /** History entry (`created_by`); absent for steps BuildKit writes none for. */
  history?: { createdBy: string; emptyLayer: boolean };
  /** The history `created` time the step recorded, restored on a hit so digests stay the same. */
  created: string;
  /** When the entry was made (RFC 3339), for the TTL. */
  writtenAt: string;
}

export function encodeConfigPatch(patch: Partial<ContainerConfig> | undefined): StepCacheEntry['configPatch'] {
  if (!patch) return undefined;
  const set: Record<string, unknown> = {};
  const removed: string[] = [];
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) removed.push(k);
    else set[k] = v;
  }
  return { set: set as Partial<ContainerConfig>, removed };
}

export function decodeConfigPatch(p: StepCacheEntry['configPatch']): Partial<ContainerConfig> | undefined {
  if (!p) return undefined;
  const out: Record<string, unknown> = { ...p.set };
  for (const k of p.removed) out[k] = undefined;
  return out as Partial<ContainerConfig>;
}

/** Parses and checks an entry; returns a reason string when it is not a valid entry for `key`. */
export function parseEntry(text: string, key: string): StepCacheEntry | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof v !== 'object' || v === null) return 'not an object';
  const e = v as Partial<StepCacheEntry>;
  if (e.version !== CACHE_KEY_VERSION) return `version ${String(e.version)}, expected ${CACHE_KEY_VERSION}`;
  if (e.key !== key) return 'entry is for another key';
  if (typeof e.created !== 'string' || typeof e.writtenAt !== 'string' || Number.isNaN(Date.parse(e.writtenAt))) return 'missing times';
  if (e.history !== undefined && (typeof e.history.createdBy !== 'string' || typeof e.history.emptyLayer !== 'boolean')) return 'bad history';
  if (e.layer !== undefined) {
    const l = e.layer;
    try {
      parseDigest(l.descriptor.digest);
      parseDigest(l.diffId);
    } catch {
      return 'bad layer digest';
    }
    if (typeof l.descriptor.size !== 'number' || typeof l.descriptor.mediaType !== 'string') return 'bad layer descriptor';
  }
  if (e.configPatch !== undefined && (typeof e.configPatch.set !== 'object' || !Array.isArray(e.configPatch.removed))) return 'bad config patch';
  return e as StepCacheEntry;
}

/** `168h`, `7d`, `1h30m`, `500ms`, `2w` → milliseconds; undefined when it is not a duration. */
export function parseTtl(text: string): number | undefined {
  const re = /([0-9]+)(ms|s|m|h|d|w)/gy;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * unit[m[2]!]!;
    matched = re.lastIndex;
  }
  return matched === text.length && text.length > 0 ? total : undefined;
}

/**
 * A cache TTL given by the user (`--cache-ttl`, or the spec's `cache.ttl` as `source`) in ms; a
 * usage error naming where it came from when it is not a duration. Undefined in, undefined out.
 */
export function ttlOption(text: string | undefined, source = '--cache-ttl'): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseTtl(text);
  if (ms === undefined) throw new StowageError('usage/bad-flag', `${source} must be a duration like 168h or 7d, not ${JSON.stringify(text)}`);
  return ms;
}

/** An entry older than `ttlMs` (by the time it was written) is ignored. */
export function isExpired(entry: StepCacheEntry, ttlMs: number | undefined, now: Date): boolean {
  if (ttlMs === undefined) return false;
  return now.getTime() - Date.parse(entry.writtenAt) > ttlMs;
}
