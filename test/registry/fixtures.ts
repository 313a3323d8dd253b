/** Small real images for registry tests: gzipped tar layers built in memory. */
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import type { Image, Layer } from '../../src/image/blob.js';
import type { Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { imageFromParts, manifestDescriptor } from '../../src/image/image.js';
import { serialize } from '../../src/image/canonical.js';
import { configPlatform } from '../../src/image/platform.js';
import type { Platform } from '../../src/image/types.js';
import { emptyImageConfig, appendLayer, type ImageDraft } from '../../src/image/mutate.js';
import { FsBlobStore } from '../../src/store/blob-store.js';

function sha(b: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
}

async function tarOf(files: Record<string, Buffer>): Promise<Buffer> {
  const p = pack();
  for (const [name, content] of Object.entries(files)) p.entry({ name, size: content.length, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, content);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export interface MemoryLayer extends Layer {
  readonly bytes: Buffer;
}

/** A layer holding the given files; `random` bytes make it unique. */
export async function makeLayer(files: Record<string, Buffer>): Promise<MemoryLayer> {
  const tar = await tarOf(files);
  const gz = gzipSync(tar, { level: 1 });
  return {
    descriptor: { mediaType: MediaType.OciLayerGzip, digest: sha(gz), size: gz.length },
    diffId: sha(tar),
    bytes: gz,
    open: async () => Readable.from([gz]),
  };
}

export async function randomLayer(size = 2048): Promise<MemoryLayer> {
  return makeLayer({ [`data-${randomBytes(4).toString('hex')}`]: randomBytes(size) });
}

/** An OCI image (linux/amd64) with the given layers. */
export function makeImage(layers: readonly Layer[], options: { format?: 'oci' | 'docker'; label?: string } = {}): Image {
  let draft: ImageDraft<Layer> = { config: emptyImageConfig({ os: 'linux', architecture: 'amd64' }), layers: [] };
  for (const l of layers) draft = appendLayer(draft, l, { created_by: 'test' });
  const config = options.label ? { ...draft.config, config: { ...draft.config.config, Labels: { t: options.label } } } : draft.config;
  return imageFromParts({ config, layers: draft.layers, format: options.format ?? 'oci' });
}

export async function tempStore(): Promise<{ store: FsBlobStore; dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-regtest-'));
  const store = await FsBlobStore.open(join(dir, 'cache'));
  return { store, dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** An OCI index over images of different platforms (taken from each config). */
export function makeIndex(images: readonly Image[]): import('../../src/registry/push.js').MultiPlatformImage {
  const index = {
    schemaVersion: 2 as const,
    mediaType: MediaType.OciIndex,
    manifests: images.map((im) => manifestDescriptor(im, { platform: configPlatform(im.config) })),
  };
  const ser = serialize(index);
  return { index, indexBytes: ser.bytes, digest: ser.digest, images };
}

/** Like makeImage, for another platform. */
export function makeImageFor(platform: Platform, layers: readonly Layer[]): Image {
  let draft: ImageDraft<Layer> = { config: emptyImageConfig(platform), layers: [] };
  for (const l of layers) draft = appendLayer(draft, l, { created_by: 'test' });
  return imageFromParts({ config: draft.config, layers: draft.layers, format: 'oci' });
}
