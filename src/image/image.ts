import { Readable } from 'node:stream';
import { StowageError } from '../util/errors.js';
import { isFileBacked, isMountable, type Blob, type Image, type Layer } from './blob.js';
import { serialize } from './canonical.js';
import { sha256Digest, type Digest } from './digest.js';
import { MediaType } from './media-types.js';
import { buildManifest, convertDescriptor, type ManifestFormat } from './mutate.js';
import { parseImageConfig, parseManifest } from './parse.js';
import type { Descriptor, ImageConfig } from './types.js';

/** A blob whose bytes are in memory (configs, manifests). */
export function bytesBlob(descriptor: Descriptor, bytes: Uint8Array): Blob {
  return {
    descriptor,
    open: async () => Readable.from([Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]),
  };
}

/**
 * The same layer under another descriptor (e.g. a media type converted between OCI and Docker).
 * The bytes are unchanged, so the file and registry-source capabilities carry over.
 */
export function withDescriptor(layer: Layer, descriptor: Descriptor): Layer {
  if (descriptor.digest !== layer.descriptor.digest || descriptor.size !== layer.descriptor.size) {
    throw new Error('withDescriptor: digest and size must not change');
  }
  const out: Layer & { path?: string; source?: { registry: string; repository: string } } = {
    descriptor,
    diffId: layer.diffId,
    open: (signal) => layer.open(signal),
  };
  if (isFileBacked(layer)) out.path = layer.path;
  if (isMountable(layer)) out.source = layer.source;
  return out;
}

/**
 * An image from a config and its layers: the config is serialised canonically and the manifest
 * built in `format`'s media types. `config.rootfs.diff_ids` must match the layers.
 */
export function imageFromParts(parts: {
  config: ImageConfig;
  layers: readonly Layer[];
  format: ManifestFormat;
  annotations?: Record<string, string>;
}): Image {
  const diffIds = parts.config.rootfs.diff_ids;
  if (diffIds.length !== parts.layers.length || diffIds.some((d, i) => d !== parts.layers[i]!.diffId)) {
    throw new StowageError('image/diffid-mismatch', `the config lists ${diffIds.length} diff_ids but the image has ${parts.layers.length} layers, or they differ`, {
      hint: 'add layers with appendLayer so the config and the layer list stay in step',
    });
  }
  const configSer = serialize(parts.config);
  const configDescriptor: Descriptor = { mediaType: MediaType.OciConfig, digest: configSer.digest, size: configSer.size };
  const opts: { format: ManifestFormat; annotations?: Record<string, string> } = { format: parts.format };
  if (parts.annotations) opts.annotations = parts.annotations;
  const manifest = buildManifest(configDescriptor, parts.layers.map((l) => l.descriptor), opts);
  const manifestSer = serialize(manifest);
  const layers = parts.layers.map((l, i) => (manifest.layers[i] === l.descriptor ? l : withDescriptor(l, manifest.layers[i]!)));
  return {
    manifest,
    manifestBytes: manifestSer.bytes,
    digest: manifestSer.digest,
    config: parts.config,
    configBytes: configSer.bytes,
    layers,
  };
}

/**
 * An image from exact manifest and config bytes read from elsewhere (registry, layout, archive).
 * The bytes are kept as they are, so the digest is the source's digest. `layers` are matched to the
 * manifest's layer descriptors by digest.
 */
export function imageFromBytes(parts: {
  manifestBytes: Uint8Array;
  configBytes: Uint8Array;
  /** Opens the blob with this descriptor; called once per manifest layer. */
  layer: (descriptor: Descriptor, diffId: Digest) => Layer;
  source?: string;
  descriptorMediaType?: string;
}): Image {
  const src = parts.source === undefined ? {} : { source: parts.source };
  const manifest = parseManifest(parts.manifestBytes, { ...src, ...(parts.descriptorMediaType ? { descriptorMediaType: parts.descriptorMediaType } : {}) });
  const configDigest = sha256Digest(parts.configBytes);
  if (configDigest !== manifest.config.digest) {
    throw new StowageError('image/digest-mismatch', `config bytes hash to ${configDigest}, the manifest says ${manifest.config.digest}${parts.source ? ` (${parts.source})` : ''}`, {
      hint: 'the image is corrupt; fetch or copy it again',
    });
  }
  const config = parseImageConfig(parts.configBytes, src);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new StowageError('image/diffid-mismatch', `the manifest has ${manifest.layers.length} layers but the config lists ${diffIds.length} diff_ids${parts.source ? ` (${parts.source})` : ''}`);
  }
  return {
    manifest,
    manifestBytes: parts.manifestBytes,
    digest: sha256Digest(parts.manifestBytes),
    config,
    configBytes: parts.configBytes,
    layers: manifest.layers.map((d, i) => parts.layer(d, diffIds[i]!)),
  };
}

function convertImage(image: Image, format: ManifestFormat): Image {
  const targetMt = format === 'docker' ? MediaType.DockerManifest : MediaType.OciManifest;
  if (image.manifest.mediaType === targetMt) return image;
  const manifest = {
    ...image.manifest,
    mediaType: targetMt,
    config: convertDescriptor(image.manifest.config, format, 'config'),
    layers: image.manifest.layers.map((l, i) => convertDescriptor(l, format, `layer ${i}`)),
  };
  if (format === 'docker') {
    delete manifest.annotations;
    delete manifest.subject;
    delete manifest.artifactType;
  }
  const ser = serialize(manifest);
  return {
    ...image,
    manifest,
    manifestBytes: ser.bytes,
    digest: ser.digest,
    layers: image.layers.map((l, i) => (l.descriptor.mediaType === manifest.layers[i]!.mediaType ? l : withDescriptor(l, manifest.layers[i]!))),
  };
}

/** The same image with Docker schema2 media types (for docker-archive and Docker-only registries). New digest. */
export function toDockerMediaTypes(image: Image): Image {
  return convertImage(image, 'docker');
}

/** The same image with OCI media types. New digest unless it already is OCI. */
export function toOciMediaTypes(image: Image): Image {
  return convertImage(image, 'oci');
}

/** The manifest descriptor of an image, as an index or a layout's index.json lists it. */
export function manifestDescriptor(image: Image, extra: { annotations?: Record<string, string>; platform?: Descriptor['platform'] } = {}): Descriptor {
  const d: Descriptor = { mediaType: image.manifest.mediaType, digest: image.digest, size: image.manifestBytes.byteLength };
  if (extra.platform) d.platform = extra.platform;
  if (extra.annotations && Object.keys(extra.annotations).length > 0) d.annotations = extra.annotations;
  return d;
}
