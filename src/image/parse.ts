import { StowageError } from '../util/errors.js';
import { isDigest } from './digest.js';
import { isIndexMediaType, isManifestMediaType, MediaType } from './media-types.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest } from './types.js';

/**
 * Structural checks for manifests, indexes and configs read from outside (registries, layouts,
 * archives). They check what later code relies on, not the full specs, and keep unknown fields.
 */

function fail(what: string, message: string, source?: string): never {
  throw new StowageError('image/invalid-' + what, `invalid ${what}${source ? ` in ${source}` : ''}: ${message}`, {
    hint: 'the image data is malformed or of an unsupported kind; re-create it or pull it again',
  });
}

function parseJson(bytes: Uint8Array, what: string, source?: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    fail(what, `not JSON (${e instanceof Error ? e.message : String(e)})`, source);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(what, 'not a JSON object', source);
  return v as Record<string, unknown>;
}

export function checkDescriptor(v: unknown, what: string, where: string, source?: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  if (typeof d !== 'object' || d === null) fail(what, `${where} is not an object`, source);
  if (typeof d.mediaType !== 'string') fail(what, `${where}.mediaType is missing`, source);
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) fail(what, `${where}.digest ${JSON.stringify(d.digest)} is not a sha256 digest`, source);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) fail(what, `${where}.size is not a non-negative integer`, source);
  return d as Descriptor;
}

/** Which kind a JSON document is, from its mediaType field or (OCI allows omitting it) its shape. */
export function sniffManifestKind(bytes: Uint8Array): 'manifest' | 'index' | 'unknown' {
  let v: Record<string, unknown>;
  try {
    v = parseJson(bytes, 'manifest');
  } catch {
    return 'unknown';
  }
  const mt = v['mediaType'];
  if (typeof mt === 'string') {
    if (isIndexMediaType(mt)) return 'index';
    if (isManifestMediaType(mt)) return 'manifest';
    return 'unknown';
  }
  if (Array.isArray(v['manifests'])) return 'index';
  if (typeof v['config'] === 'object' && Array.isArray(v['layers'])) return 'manifest';
  return 'unknown';
}

/** `descriptorMediaType` fills in a mediaType the document omits (allowed for OCI). */
export function parseManifest(bytes: Uint8Array, options: { source?: string; descriptorMediaType?: string } = {}): ImageManifest {
  const v = parseJson(bytes, 'manifest', options.source);
  if (v['schemaVersion'] !== 2) fail('manifest', `schemaVersion is ${JSON.stringify(v['schemaVersion'])}, expected 2`, options.source);
  const mediaType = typeof v['mediaType'] === 'string' ? v['mediaType'] : (options.descriptorMediaType ?? MediaType.OciManifest);
  if (!isManifestMediaType(mediaType)) fail('manifest', `mediaType ${mediaType} is not an image manifest`, options.source);
  checkDescriptor(v['config'], 'manifest', 'config', options.source);
  if (!Array.isArray(v['layers'])) fail('manifest', 'layers is not an array', options.source);
  v['layers'].forEach((l, i) => checkDescriptor(l, 'manifest', `layers[${i}]`, options.source));
  return { ...v, mediaType } as unknown as ImageManifest;
}

export function parseIndex(bytes: Uint8Array, options: { source?: string; descriptorMediaType?: string } = {}): ImageIndex {
  const v = parseJson(bytes, 'index', options.source);
  if (v['schemaVersion'] !== 2) fail('index', `schemaVersion is ${JSON.stringify(v['schemaVersion'])}, expected 2`, options.source);
  const mediaType = typeof v['mediaType'] === 'string' ? v['mediaType'] : (options.descriptorMediaType ?? MediaType.OciIndex);
  if (!isIndexMediaType(mediaType)) fail('index', `mediaType ${mediaType} is not an image index`, options.source);
  if (!Array.isArray(v['manifests'])) fail('index', 'manifests is not an array', options.source);
  v['manifests'].forEach((m, i) => checkDescriptor(m, 'index', `manifests[${i}]`, options.source));
  return { ...v, mediaType } as unknown as ImageIndex;
}

export function parseImageConfig(bytes: Uint8Array, options: { source?: string } = {}): ImageConfig {
  const v = parseJson(bytes, 'config', options.source);
  if (typeof v['architecture'] !== 'string' || typeof v['os'] !== 'string') fail('config', 'architecture and os are required', options.source);
  const rootfs = v['rootfs'] as { type?: unknown; diff_ids?: unknown } | undefined;
  if (typeof rootfs !== 'object' || rootfs === null || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) {
    fail('config', 'rootfs must be {type: "layers", diff_ids: [...]}', options.source);
  }
  for (const d of rootfs.diff_ids as unknown[]) {
    if (typeof d !== 'string' || !isDigest(d)) fail('config', `rootfs.diff_ids has an invalid digest ${JSON.stringify(d)}`, options.source);
  }
  return v as unknown as ImageConfig;
}
