/**
 * Destination strings: `host[:port]/repo:tag`, `oci:<dir>[:tag]`, `docker-archive:<file>[:ref]`.
 * Pure: paths are resolved against the directory the caller passes.
 */
import { isAbsolute, resolve } from 'node:path';
import { StowageError, assertNever } from '../util/errors.js';
import { parseDockerArchiveReference, parseOciReference } from '../store/references.js';
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
  // oci: and docker-archive: names are parsed as every other command parses them (skopeo's rules).
  if (text.startsWith('oci:') || text.startsWith('docker-archive:')) {
    try {
      if (text.startsWith('oci:')) {
        const r = parseOciReference(text);
        return { ok: true, value: r.tag === undefined ? { kind: 'oci', dir: abs(r.dir), text } : { kind: 'oci', dir: abs(r.dir), tag: r.tag, text } };
      }
      const r = parseDockerArchiveReference(text);
      return { ok: true, value: r.ref === undefined ? { kind: 'docker-archive', file: abs(r.file), text } : { kind: 'docker-archive', file: abs(r.file), ref: r.ref, text } };
    } catch (e) {
      if (!(e instanceof StowageError)) throw e;
      return { ok: false, message: e.message, ...(e.hint !== undefined ? { hint: e.hint } : {}) };
    }
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
