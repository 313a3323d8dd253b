import { StowageError } from '../util/errors.js';
import type { Digest } from './digest.js';
import { layerCompression, MediaType, toDockerMediaType, toOciMediaType } from './media-types.js';
import type { ContainerConfig, Descriptor, HistoryEntry, ImageConfig, ImageIndex, ImageManifest, Platform } from './types.js';

/**
 * Immutable image-building helpers: every function returns new objects and never modifies its
 * arguments, so a base image's config can be shared by every stage built on it.
 */

export type ManifestFormat = 'oci' | 'docker';

/** What BuildKit puts in PATH when the base config has none (DOCKERFILE.md A8). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Anything with a layer's identity: a Layer, or a bare {descriptor, diffId}. */
export interface LayerLike {
  readonly descriptor: Descriptor;
  readonly diffId: Digest;
}

/** An image being built: its config and its layers, in order. */
export interface ImageDraft<L extends LayerLike = LayerLike> {
  readonly config: ImageConfig;
  readonly layers: readonly L[];
}

/** The config of `FROM scratch`: PATH plus WorkingDir "/" (DOCKERFILE.md A9), no layers. */
export function emptyImageConfig(platform: Platform): ImageConfig {
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    config: platform.os === 'windows' ? { WorkingDir: '/' } : { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [] },
  };
  if (platform.variant) config.variant = platform.variant;
  if (platform['os.version']) config['os.version'] = platform['os.version'];
  return config;
}

/**
 * History with one non-empty entry per layer. Base images without history (or with too little)
 * get blank entries for their layers first, so the entry we add lines up with its layer.
 */
function historyForLayers(config: ImageConfig): HistoryEntry[] {
  const history = config.history ? config.history.map((h) => ({ ...h })) : [];
  const nonEmpty = history.filter((h) => !h.empty_layer).length;
  const missing = config.rootfs.diff_ids.length - nonEmpty;
  if (missing > 0) history.unshift(...Array.from({ length: missing }, (): HistoryEntry => ({ created_by: '' })));
  return history;
}

/** Adds a layer (its diffId to rootfs, its history entry) to a draft. */
export function appendLayer<L extends LayerLike>(draft: ImageDraft<L>, layer: L, history: HistoryEntry): ImageDraft<L> {
  const entry: HistoryEntry = { ...history };
  delete entry.empty_layer;
  const config: ImageConfig = {
    ...draft.config,
    rootfs: { type: 'layers', diff_ids: [...draft.config.rootfs.diff_ids, layer.diffId] },
    history: [...historyForLayers(draft.config), entry],
  };
  return { config, layers: [...draft.layers, layer] };
}

/** Records a step that changed only the config (ENV, LABEL, CMD, ...). */
export function appendHistory(config: ImageConfig, entry: HistoryEntry): ImageConfig {
  return { ...config, history: [...historyForLayers(config), { ...entry, empty_layer: true }] };
}

/**
 * Sets container-config fields. A key present in `patch` with the value `undefined` is removed
 * (e.g. `{Cmd: undefined}` after ENTRYPOINT resets CMD), other keys are kept.
 */
export function patchConfig(config: ImageConfig, patch: Partial<ContainerConfig>): ImageConfig {
  const next: Record<string, unknown> = { ...(config.config ?? {}) };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) delete next[key];
    else next[key] = value;
  }
  return { ...config, config: next as ContainerConfig };
}

/** Fields of the config outside the container config (created, author, platform). */
export function patchImageConfig(config: ImageConfig, patch: Partial<Pick<ImageConfig, 'created' | 'author' | 'architecture' | 'os' | 'variant' | 'os.version'>>): ImageConfig {
  const next: Record<string, unknown> = { ...config };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) delete next[key];
    else next[key] = value;
  }
  return next as unknown as ImageConfig;
}

function convertMediaType(mt: string, format: ManifestFormat, what: string): string {
  const out = format === 'docker' ? toDockerMediaType(mt) : toOciMediaType(mt);
  if (out === undefined) {
    throw new StowageError('image/unsupported-media-type', `${what} media type ${mt} has no ${format === 'docker' ? 'Docker' : 'OCI'} equivalent`, {
      hint: format === 'docker' ? 'zstd layers and OCI artifacts need an OCI manifest; use format "oci"' : 'this image contains content stowage does not know how to convert',
    });
  }
  return out;
}

/** A descriptor with its media type in `format`'s family. */
export function convertDescriptor(d: Descriptor, format: ManifestFormat, what = 'blob'): Descriptor {
  const mediaType = convertMediaType(d.mediaType, format, what);
  return mediaType === d.mediaType ? d : { ...d, mediaType };
}

/** A manifest for the config and layers, with every media type in the chosen family. */
export function buildManifest(
  config: Descriptor,
  layers: readonly Descriptor[],
  options: { format: ManifestFormat; annotations?: Record<string, string> },
): ImageManifest {
  for (const [i, l] of layers.entries()) {
    if (layerCompression(l.mediaType) === undefined) {
      throw new StowageError('image/unsupported-media-type', `layer ${i} has media type ${l.mediaType}, which is not a layer type`);
    }
  }
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: options.format === 'docker' ? MediaType.DockerManifest : MediaType.OciManifest,
    config: convertDescriptor(config, options.format, 'config'),
    layers: layers.map((l, i) => convertDescriptor(l, options.format, `layer ${i}`)),
  };
  if (options.annotations && Object.keys(options.annotations).length > 0) {
    if (options.format === 'docker') {
      throw new StowageError('image/unsupported-annotations', 'Docker schema2 manifests cannot carry annotations', {
        hint: 'use format "oci" to keep manifest annotations',
      });
    }
    manifest.annotations = { ...options.annotations };
  }
  return manifest;
}

/** An index (OCI) or manifest list (Docker) over per-platform manifest descriptors, which must carry `platform`. */
export function buildIndex(manifests: readonly Descriptor[], options: { format: ManifestFormat; annotations?: Record<string, string> }): ImageIndex {
  for (const m of manifests) {
    if (m.platform === undefined) {
      throw new StowageError('image/index-without-platform', `index entry ${m.digest} has no platform`, { hint: 'give every manifest in a multi-platform index its platform' });
    }
  }
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: options.format === 'docker' ? MediaType.DockerManifestList : MediaType.OciIndex,
    manifests: manifests.map((m) => convertDescriptor(m, options.format, 'manifest')),
  };
  if (options.annotations && Object.keys(options.annotations).length > 0) index.annotations = { ...options.annotations };
  return index;
}
