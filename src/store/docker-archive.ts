import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { PassThrough, Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type tar from 'tar-stream';
import type { Image, Layer } from '../image/blob.js';
import { serialize } from '../image/canonical.js';
import { digestHex, sha256Digest, type Digest } from '../image/digest.js';
import { layerCompression, MediaType } from '../image/media-types.js';
import { buildManifest, type ManifestFormat } from '../image/mutate.js';
import { parseImageConfig } from '../image/parse.js';
import type { Descriptor } from '../image/types.js';
import { StowageError } from '../util/errors.js';
import { createExclusiveWriteStream, syncFile } from './atomic.js';
import { openFile } from './layers.js';
import { normalizeArchiveRef } from './references.js';
import { indexTar, resolveMember, type TarMember } from './tar-index.js';

/**
 * `docker save` archives (the format `docker load` and `podman load` read): a tar holding
 * manifest.json (`[{Config, RepoTags, Layers}]`), the config JSON and one file per layer. Layers
 * are stored as the blobs are, gzip included — docker, podman and skopeo all decompress layer files
 * they load — which needs no second pass to learn uncompressed sizes for the tar headers.
 */

export { normalizeArchiveRef, parseDockerArchiveReference, type DockerArchiveReference } from './references.js';

interface ArchiveManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

function layerFileName(d: Descriptor): string {
  const compression = layerCompression(d.mediaType);
  switch (compression) {
    case 'gzip':
      return `${digestHex(d.digest)}.tar.gz`;
    case 'none':
      return `${digestHex(d.digest)}.tar`;
    case 'zstd':
    case undefined:
      throw new StowageError('store/unsupported-media-type', `layer ${d.digest} has media type ${d.mediaType}, which docker load does not read`, {
        hint: 'docker archives need gzip or uncompressed layers; use an oci: destination for zstd images',
      });
  }
}

/** Streams one tar member whose size is known up front, verifying the bytes match the descriptor. */
async function addVerifiedEntry(pack: tar.Pack, name: string, source: Readable, d: Descriptor, signal?: AbortSignal): Promise<void> {
  const hash = createHash('sha256');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      if (size > d.size) return cb(new StowageError('store/size-mismatch', `blob ${d.digest} is longer than its descriptor's ${d.size} bytes`));
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      const digest = `sha256:${hash.digest('hex')}`;
      if (size !== d.size) return cb(new StowageError('store/size-mismatch', `blob ${d.digest} is ${size} bytes, its descriptor says ${d.size}`));
      if (digest !== d.digest) return cb(new StowageError('store/digest-mismatch', `blob hashes to ${digest}, expected ${d.digest}`));
      cb();
    },
  });
  const entry = pack.entry({ name, size: d.size, mode: 0o644, mtime: new Date(0), type: 'file' });
  await pipeline(source, meter, entry, signal ? { signal } : {});
}

/**
 * Writes `image` as a docker-archive tar at `file`, tagged with `refs` (none: an untagged image).
 * The tar is written to `<file>.tmp-XXXX` and renamed, so `file` is either absent, the old archive,
 * or complete.
 */
export async function writeDockerArchive(file: string, image: Image, options: { refs: readonly string[]; signal?: AbortSignal }): Promise<void> {
  const { signal } = options;
  signal?.throwIfAborted();
  const repoTags = options.refs.map(normalizeArchiveRef);
  const configName = `${digestHex(image.manifest.config.digest)}.json`;
  const layerNames = image.layers.map((l) => layerFileName(l.descriptor));
  const manifest: ArchiveManifestEntry[] = [{ Config: configName, RepoTags: repoTags, Layers: layerNames }];

  const tmp = join(dirname(file), `.${basename(file)}.tmp-${randomBytes(6).toString('hex')}`);
  // tar-stream (and its five dependencies) only when an archive is really written: bundled into a
  // command's file, a top-level import would load them on every run of it.
  const pack = (await import('tar-stream')).pack();
  const out = pipeline(pack, await createExclusiveWriteStream(tmp), signal ? { signal } : {});
  const fill = (async () => {
    const configD: Descriptor = { ...image.manifest.config, size: image.configBytes.byteLength };
    await addVerifiedEntry(pack, configName, bufferStream(image.configBytes), configD, signal);
    const written = new Set<string>();
    for (const [i, layer] of image.layers.entries()) {
      if (written.has(layerNames[i]!)) continue; // a repeated layer is stored once, listed twice
      written.add(layerNames[i]!);
      await addVerifiedEntry(pack, layerNames[i]!, await layer.open(signal), layer.descriptor, signal);
    }
    const manifestJson = Buffer.from(JSON.stringify(manifest));
    await addVerifiedEntry(pack, 'manifest.json', bufferStream(manifestJson), { mediaType: 'application/json', digest: sha256Digest(manifestJson), size: manifestJson.length }, signal);
    pack.finalize();
  })();
  try {
    // If filling fails, tear the pack down so the file pipeline ends too.
    await Promise.all([fill.catch((e: unknown) => { pack.destroy(e as Error); throw e; }), out]);
    await syncFile(tmp);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

function bufferStream(bytes: Uint8Array): Readable {
  const s = new PassThrough();
  s.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return s;
}

async function readMember(file: string, m: TarMember, limit: number): Promise<Buffer> {
  if (m.size > limit) throw new StowageError('store/too-large', `${m.name} in ${file} is ${m.size} bytes, more than ${limit}`);
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(m.size);
    const { bytesRead } = await fh.read(buf, 0, m.size, m.offset);
    if (bytesRead !== m.size) throw new StowageError('store/invalid-archive', `${file} is truncated inside ${m.name}`);
    return buf;
  } finally {
    await fh.close();
  }
}

async function sniffCompression(file: string, m: TarMember): Promise<'gzip' | 'zstd' | 'none'> {
  const head = await readMember(file, { ...m, size: Math.min(4, m.size) }, 4);
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** sha256 of the member's bytes and, for gzip, of the decompressed bytes too, in one read. */
async function hashMember(file: string, m: TarMember, gzip: boolean, signal?: AbortSignal): Promise<{ digest: Digest; diffId: Digest }> {
  const outer = createHash('sha256');
  const inner = createHash('sha256');
  const source = m.size === 0 ? bufferStream(new Uint8Array()) : createReadStream(file, { start: m.offset, end: m.offset + m.size - 1 });
  const tee = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      outer.update(chunk);
      cb(null, gzip ? chunk : null);
    },
  });
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      inner.update(chunk);
      cb();
    },
  });
  if (gzip) await pipeline(source, tee, createGunzip(), sink, signal ? { signal } : {});
  else await pipeline(source, tee, sink, signal ? { signal } : {});
  const digest = `sha256:${outer.digest('hex')}` as Digest;
  return { digest, diffId: gzip ? (`sha256:${inner.digest('hex')}` as Digest) : digest };
}

/**
 * Reads an image from a docker-archive tar (written by docker save, podman save, skopeo or stowage):
 * the one whose RepoTags include `ref`, or the only one. Layer files are hashed once to build
 * descriptors and checked against the config's diff_ids; their bytes are then streamed from the
 * archive on demand. The config bytes are kept exactly, so the image ID is unchanged.
 */
export async function readDockerArchive(file: string, options: { ref?: string; format?: ManifestFormat; signal?: AbortSignal } = {}): Promise<Image> {
  const { signal } = options;
  const members = await indexTar(file, signal ? { signal } : {});
  const manifestMember = resolveMember(members, 'manifest.json');
  if (manifestMember === undefined) {
    throw new StowageError('store/invalid-archive', `${file} has no manifest.json`, {
      hint: 'docker-archive inputs are what `docker save` writes; an OCI layout tar should be unpacked and read as oci:<dir>',
    });
  }
  let entries: ArchiveManifestEntry[];
  try {
    entries = JSON.parse((await readMember(file, manifestMember, 16 * 1024 * 1024)).toString('utf8')) as ArchiveManifestEntry[];
    if (!Array.isArray(entries)) throw new Error('not an array');
  } catch (e) {
    throw new StowageError('store/invalid-archive', `${file}: manifest.json is not a docker-archive manifest`, { cause: e });
  }
  let entry: ArchiveManifestEntry | undefined;
  const allTags = entries.flatMap((e) => e.RepoTags ?? []);
  if (options.ref !== undefined) {
    const want = normalizeArchiveRef(options.ref);
    entry = entries.find((e) => (e.RepoTags ?? []).some((t) => t === want || t === `docker.io/library/${want}` || `docker.io/library/${t}` === want));
    if (entry === undefined) {
      throw new StowageError('store/tag-not-found', `${file} has no image tagged ${want}`, {
        hint: allTags.length > 0 ? `it has: ${allTags.join(', ')}` : 'its images are untagged',
      });
    }
  } else {
    if (entries.length !== 1) {
      throw new StowageError('store/ambiguous-archive', `${file} holds ${entries.length} images; say which one`, {
        hint: allTags.length > 0 ? `use docker-archive:${file}:<name:tag>, one of: ${allTags.join(', ')}` : 'the archive has no images',
      });
    }
    entry = entries[0]!;
  }
  if (typeof entry.Config !== 'string' || !Array.isArray(entry.Layers)) {
    throw new StowageError('store/invalid-archive', `${file}: manifest.json entry lacks Config or Layers`);
  }
  const configMember = resolveMember(members, entry.Config);
  if (configMember === undefined) throw new StowageError('store/invalid-archive', `${file}: config ${entry.Config} is missing`);
  const configBytes = new Uint8Array(await readMember(file, configMember, 16 * 1024 * 1024));
  const config = parseImageConfig(configBytes, { source: `${file}:${entry.Config}` });
  if (config.rootfs.diff_ids.length !== entry.Layers.length) {
    throw new StowageError('store/invalid-archive', `${file}: the config lists ${config.rootfs.diff_ids.length} diff_ids but manifest.json ${entry.Layers.length} layers`);
  }

  const format = options.format ?? 'oci';
  const layerMembers: { member: TarMember; descriptor: Descriptor; diffId: Digest }[] = [];
  for (const [i, name] of entry.Layers.entries()) {
    const member = resolveMember(members, name);
    if (member === undefined) throw new StowageError('store/invalid-archive', `${file}: layer ${name} is missing`);
    const compression = await sniffCompression(file, member);
    if (compression === 'zstd') throw new StowageError('store/unsupported-media-type', `${file}: layer ${name} is zstd-compressed, which stowage cannot read from a docker archive yet`);
    const { digest, diffId } = await hashMember(file, member, compression === 'gzip', signal);
    if (diffId !== config.rootfs.diff_ids[i]) {
      throw new StowageError('store/digest-mismatch', `${file}: layer ${name} has diffID ${diffId}, the config says ${config.rootfs.diff_ids[i]}`, {
        hint: 'the archive is corrupt; save it again',
      });
    }
    const mediaType = compression === 'gzip' ? MediaType.OciLayerGzip : MediaType.OciLayer;
    layerMembers.push({ member, descriptor: { mediaType, digest, size: member.size }, diffId });
  }
  const configDescriptor: Descriptor = { mediaType: MediaType.OciConfig, digest: sha256Digest(configBytes), size: configBytes.byteLength };
  const manifest = buildManifest(configDescriptor, layerMembers.map((l) => l.descriptor), { format });
  const ser = serialize(manifest);
  const layers: Layer[] = layerMembers.map(({ member, diffId }, i) => ({
    descriptor: manifest.layers[i]!,
    diffId,
    open: (s?: AbortSignal) =>
      member.size === 0 ? Promise.resolve(bufferStream(new Uint8Array())) : openFile(file, `layer in ${file}`, s, { start: member.offset, end: member.offset + member.size - 1 }),
  }));
  return { manifest, manifestBytes: ser.bytes, digest: ser.digest, config, configBytes, layers };
}

