export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export type MediaTypeValue = (typeof MediaType)[keyof typeof MediaType];

/** The full Accept list for resolving a reference (REGISTRY.md §8: a partial list gets rewrites). */
export const MANIFEST_ACCEPT = [
  MediaType.OciIndex,
  MediaType.OciManifest,
  MediaType.DockerManifestList,
  MediaType.DockerManifest,
].join(', ');

export function isIndexMediaType(mt: string): boolean {
  return mt === MediaType.OciIndex || mt === MediaType.DockerManifestList;
}

export function isManifestMediaType(mt: string): boolean {
  return mt === MediaType.OciManifest || mt === MediaType.DockerManifest;
}

/** Media types beyond the common set, needed to convert whole images between OCI and Docker. */
export const ExtraMediaType = {
  /** Docker's uncompressed layer type; rare, but docker-archive inputs and some registries carry it. */
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  OciLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OciLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
} as const;

export type LayerCompression = 'gzip' | 'zstd' | 'none';

const LAYER_COMPRESSION: Readonly<Record<string, LayerCompression>> = {
  [MediaType.OciLayerGzip]: 'gzip',
  [MediaType.OciLayer]: 'none',
  [MediaType.OciLayerZstd]: 'zstd',
  [MediaType.DockerLayerGzip]: 'gzip',
  [MediaType.DockerForeignLayerGzip]: 'gzip',
  [ExtraMediaType.DockerLayer]: 'none',
  [ExtraMediaType.OciLayerNondistributableGzip]: 'gzip',
  [ExtraMediaType.OciLayerNondistributable]: 'none',
};

/** Compression of a layer media type, or undefined when it is not a layer type we know. */
export function layerCompression(mt: string): LayerCompression | undefined {
  return LAYER_COMPRESSION[mt];
}

/** OCI ↔ Docker pairs. zstd layers have no Docker equivalent. */
const OCI_TO_DOCKER: Readonly<Record<string, string>> = {
  [MediaType.OciManifest]: MediaType.DockerManifest,
  [MediaType.OciIndex]: MediaType.DockerManifestList,
  [MediaType.OciConfig]: MediaType.DockerConfig,
  [MediaType.OciLayerGzip]: MediaType.DockerLayerGzip,
  [MediaType.OciLayer]: ExtraMediaType.DockerLayer,
  [ExtraMediaType.OciLayerNondistributableGzip]: MediaType.DockerForeignLayerGzip,
};

const DOCKER_TO_OCI: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(OCI_TO_DOCKER).map(([oci, docker]) => [docker, oci]),
);

/** The Docker media type for `mt`; Docker types pass through. Undefined if there is none (zstd, artifacts). */
export function toDockerMediaType(mt: string): string | undefined {
  if (mt in DOCKER_TO_OCI) return mt;
  return OCI_TO_DOCKER[mt];
}

/** The OCI media type for `mt`; OCI types pass through. Undefined if `mt` is neither OCI nor a known Docker type. */
export function toOciMediaType(mt: string): string | undefined {
  if (mt in OCI_TO_DOCKER || mt === MediaType.OciLayerZstd || mt === ExtraMediaType.OciLayerNondistributable) return mt;
  return DOCKER_TO_OCI[mt];
}
