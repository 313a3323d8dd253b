/**
 * Destination strings: `host[:port]/repo:tag`, `oci:<dir>[:tag]`, `docker-archive:<file>[:ref]`.
 * Pure: paths are resolved against the directory the caller passes.
 */
import { isAbsolute, resolve } from 'node:path';
import { assertNever } from '../util/errors.js';
import { didYouMean } from '../util/levenshtein.js';
import type { Destination } from './types.js';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string; hint?: string };

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DOMAIN_COMPONENT = '(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])';
const DOMAIN = new RegExp(`^${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const SCHEMES = ['oci', 'docker-archive'];

export interface RegistryRef {
  /** Lower-cased host, `docker.io` when none was written. */
  host: string;
  repository: string;
  tag?: string;
  digest?: string;
}

/** Parses a registry reference the way docker does (`app` → `docker.io/library/app`). */
export function parseRegistryRef(text: string): ParseResult<RegistryRef> {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(digest)) return { ok: false, message: `invalid digest in '${text}'` };
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return { ok: false, message: `invalid tag '${tag}' in '${text}'`, hint: 'a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`' };
  }
  const parts = rest.split('/');
  let host = 'docker.io';
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!DOMAIN.test(first)) return { ok: false, message: `invalid registry host '${first}' in '${text}'` };
    host = first.toLowerCase();
    parts.shift();
  }
  if (host === 'index.docker.io' || host === 'registry-1.docker.io') host = 'docker.io';
  for (const p of parts) {
    if (!PATH_COMPONENT.test(p)) {
      return { ok: false, message: `invalid repository name '${parts.join('/')}' in '${text}'`, hint: 'repository names use lower-case letters, digits and single separators (`.`, `_`, `-`) between `/`-separated parts' };
    }
  }
  if (host === 'docker.io' && parts.length === 1) parts.unshift('library');
  return { ok: true, value: { host, repository: parts.join('/'), tag, digest } };
}

/** `host/repo:tag` with docker's defaults filled in. */
export function formatRegistryRef(r: RegistryRef): string {
  return `${r.host}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

export function parseDestination(text: string, baseDir: string): ParseResult<Destination> {
  const abs = (p: string) => (isAbsolute(p) ? resolve(p) : resolve(baseDir, p));
  if (text.startsWith('oci:')) {
    let dir = text.slice('oci:'.length);
    let tag: string | undefined;
    const colon = dir.lastIndexOf(':');
    if (colon >= 0 && !dir.slice(colon + 1).includes('/') && TAG.test(dir.slice(colon + 1))) {
      tag = dir.slice(colon + 1);
      dir = dir.slice(0, colon);
    }
    if (dir === '') return { ok: false, message: `'${text}' names no directory`, hint: 'write oci:<dir>[:tag], e.g. oci:out/app:latest' };
    return { ok: true, value: tag === undefined ? { kind: 'oci', dir: abs(dir), text } : { kind: 'oci', dir: abs(dir), tag, text } };
  }
  if (text.startsWith('docker-archive:')) {
    // As skopeo does: the file name ends at the first ':'; the rest is the image reference in the archive.
    const body = text.slice('docker-archive:'.length);
    const colon = body.indexOf(':');
    const file = colon >= 0 ? body.slice(0, colon) : body;
    const ref = colon >= 0 ? body.slice(colon + 1) : undefined;
    if (file === '') return { ok: false, message: `'${text}' names no file`, hint: 'write docker-archive:<file.tar>[:ref]' };
    if (ref !== undefined) {
      const parsed = parseRegistryRef(ref);
      if (!parsed.ok) return parsed;
      if (parsed.value.digest) return { ok: false, message: `the reference in '${text}' must be a tag, not a digest` };
      return { ok: true, value: { kind: 'docker-archive', file: abs(file), ref: formatRegistryRef(withTag(parsed.value)), text } };
    }
    return { ok: true, value: { kind: 'docker-archive', file: abs(file), text } };
  }
  const parsed = parseRegistryRef(text);
  if (!parsed.ok) {
    const scheme = /^([a-z-]+):/.exec(text)?.[1];
    const guess = scheme ? didYouMean(scheme, SCHEMES) : undefined;
    return guess ? { ok: false, message: parsed.message, hint: `did you mean '${guess}:'? Destinations are host[:port]/repo:tag, oci:<dir>[:tag] or docker-archive:<file>[:ref]` } : { ...parsed, hint: parsed.hint ?? 'destinations are host[:port]/repo:tag, oci:<dir>[:tag] or docker-archive:<file>[:ref]' };
  }
  if (parsed.value.digest) return { ok: false, message: `destination '${text}' has a digest; a destination needs a tag`, hint: 'remove the @sha256:… part' };
  return { ok: true, value: { kind: 'registry', ref: formatRegistryRef(withTag(parsed.value)), text } };
}

function withTag(r: RegistryRef): RegistryRef {
  return r.tag ? r : { ...r, tag: 'latest' };
}

/** Two destinations with the same key write the same place. */
export function destinationKey(d: Destination): string {
  switch (d.kind) {
    case 'registry':
      return `registry:${d.ref}`;
    case 'oci':
      return `oci:${d.dir}:${d.tag ?? ''}`;
    case 'docker-archive':
      // The archive file is written whole by one image, whatever the ref inside.
      return `docker-archive:${d.file}`;
    default:
      return assertNever(d, 'destination');
  }
}
