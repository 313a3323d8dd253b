import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { Image, Layer } from '../../src/image/blob.js';
import { sha256Digest, type Digest } from '../../src/image/digest.js';
import { imageFromParts } from '../../src/image/image.js';
import { MediaType } from '../../src/image/media-types.js';
import { appendLayer, emptyImageConfig, patchConfig, type ImageDraft, type ManifestFormat } from '../../src/image/mutate.js';
import type { Platform } from '../../src/image/types.js';
import { FsBlobStore } from '../../src/store/blob-store.js';
import { storeLayer } from '../../src/store/layers.js';

export const run = promisify(execFile);

export async function tempDir(t: { after: (fn: () => Promise<void>) => void }, prefix = 'stowage-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** An uncompressed tar of `files` (path → content); directories are implied by paths ending in '/'. */
export async function makeTar(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c) => chunks.push(c as Buffer));
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const mtime = new Date(0);
  for (const [name, content] of Object.entries(files)) {
    if (name.endsWith('/')) pack.entry({ name, type: 'directory', mode: 0o755, mtime });
    else pack.entry({ name, mode: 0o644, mtime }, content);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface TestLayer {
  gz: Buffer;
  digest: Digest;
  diffId: Digest;
}

export async function makeLayer(files: Record<string, string>): Promise<TestLayer> {
  const tarBytes = await makeTar(files);
  const gz = gzipSync(tarBytes);
  return { gz, digest: sha256Digest(gz), diffId: sha256Digest(tarBytes) };
}

/** A small image whose layers live in `store`: two gzip tar layers and a CMD. */
export async function makeImage(
  store: FsBlobStore,
  layerFiles: Record<string, string>[],
  options: { platform: Platform; format?: ManifestFormat; cmd?: string[] },
): Promise<Image> {
  let draft: ImageDraft<Layer> = { config: emptyImageConfig(options.platform), layers: [] };
  for (const [i, files] of layerFiles.entries()) {
    const l = await makeLayer(files);
    await store.write(l.gz, { expected: l.digest });
    const layer = storeLayer(store, { mediaType: MediaType.OciLayerGzip, digest: l.digest, size: l.gz.length }, l.diffId);
    draft = appendLayer(draft, layer, { created_by: `layer ${i}`, created: '2024-01-01T00:00:00Z' });
  }
  const config = patchConfig(draft.config, { Cmd: options.cmd ?? ['/bin/sh'] });
  return imageFromParts({ config, layers: draft.layers, format: options.format ?? 'oci' });
}
