/**
 * The normalised build spec: what `loadSpec` returns once a stowage.yaml has no errors.
 * Everything here is resolved: defaults/extends merged, matrices expanded, `${{ }}` interpolated,
 * paths absolute, groups expanded to image names. Consumers never see the raw YAML shape.
 */
import type { SourceRange } from '../util/errors.js';

export type VarValue = string | number | boolean;

export interface SourceLocation {
  /** Path as the user should see it (the same string diagnostics use). */
  file: string;
  range: SourceRange;
}

/**
 * Where an image and each of its fields were written. Field keys are dotted paths:
 * `context`, `dockerfile`, `target`, `args`, `args.FOO`, `labels.x`, `platforms.0`, `destinations.1`,
 * `secrets.npm`, `push`, `noCache`. A field inherited from `defaults` or a template points at the
 * place where the winning value was written. Use `fieldLocation` to look one up with fallback.
 */
export interface SourceMap {
  image: SourceLocation;
  fields: Record<string, SourceLocation>;
}

export type Destination =
  | { kind: 'registry'; /** normalised `host/repo:tag` */ ref: string; text: string }
  | { kind: 'oci'; /** absolute */ dir: string; tag?: string; text: string }
  | { kind: 'docker-archive'; /** absolute */ file: string; ref?: string; text: string };

export type SecretSource = { env: string } | { file: string /* absolute */ };

export interface SpecImage {
  name: string;
  /** Absolute path of the build context directory. */
  context: string;
  /** True when the context lies outside the spec's directory tree because the spec says so literally. */
  contextExplicitOutside: boolean;
  /** Absolute path of the Dockerfile. */
  dockerfile: string;
  target?: string;
  args: Record<string, string>;
  labels: Record<string, string>;
  /** Normalised `os/arch[/variant]`; empty means the build machine's platform. */
  platforms: string[];
  destinations: Destination[];
  push: boolean;
  noCache: boolean;
  secrets: Record<string, SecretSource>;
  /** The matrix combination this image was expanded from, if any (axis → value as text). */
  matrix?: Record<string, string>;
  source: SourceMap;
}

export interface ExecutionOptions {
  jobs?: number;
  failure: 'fail-fast' | 'keep-going';
  publish: 'immediate' | 'after-all';
}

export interface CacheOptions {
  repo: string;
  ttl?: string;
}

export interface BuildSpec {
  /** Absolute path of the spec file. */
  file: string;
  /** Absolute directory of the spec file; relative paths in the spec resolve against it. */
  dir: string;
  version: 1;
  vars: Record<string, VarValue>;
  /** Sorted by name. */
  images: SpecImage[];
  /** Group name → image names (sorted, nested groups and globs expanded). */
  groups: Record<string, string[]>;
  execution: ExecutionOptions;
  cache?: CacheOptions;
  /**
   * Names under `images:` that were expanded by a matrix → the expanded image names.
   * Lets `selectImages` and groups accept the family name.
   */
  families: Record<string, string[]>;
}

export interface LoadResult {
  /** Present only when there are no error diagnostics. */
  spec?: BuildSpec;
  diagnostics: import('../util/errors.js').Diagnostic[];
}
