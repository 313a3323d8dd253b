/**
 * What the cache reads from the engine's parts, as its own small structural types: the engine's
 * BuildContext and ImageSource satisfy them without the cache importing the engine (the engine
 * uses the cache, so the arrow must run that way only).
 */
import type { Platform } from '../image/types.js';

/** A source argument of COPY/ADD resolved inside a build context. */
export interface ContextSource {
  /** Path as named or matched ('/'-separated, no leading '/'; '.' = the root). */
  readonly relPath: string;
  /** The same after following top-level symlinks inside the context (what digests are taken of). */
  readonly resolvedRel: string;
  readonly isDir: boolean;
  /** `--parents`: where the entry lands, relative to the destination directory. */
  readonly parentsPath?: string;
}

/** The part of a build context that step keys read: sources resolved, contents digested. */
export interface ContextSources {
  resolveSources(
    patterns: readonly string[],
    opts: { allowEmptyWildcard: boolean; parents: boolean; excludes: readonly string[]; signal?: AbortSignal },
  ): Promise<readonly ContextSource[]>;
  /** sha256 over content and mode of each path (a directory: its whole non-ignored tree). */
  fileDigests(relPaths: readonly string[], signal?: AbortSignal): Promise<Map<string, string>>;
}

/** Resolves an image reference to its manifest digest (the identity `--from=<image>` keys on). */
export interface ImageDigests {
  resolve(ref: string, platform: Platform, signal: AbortSignal): Promise<{ digest: string }>;
}

/** A context the cache opened itself, to be closed when the plan is done. */
export interface OpenedContext extends ContextSources {
  close(): Promise<void>;
}
