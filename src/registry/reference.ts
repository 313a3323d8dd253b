/**
 * Image references with Docker's defaults (distribution/reference "normalized named"):
 *   busybox                      → docker.io/library/busybox:latest
 *   localhost:5000/x             → registry localhost:5000, repository x
 *   ghcr.io/o/r:tag@sha256:…     → tag and digest (the digest wins when pulling)
 * Pure: no I/O.
 */
import { StowageError } from '../util/errors.js';
import { isDigest, type Digest } from '../image/digest.js';

export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's registry API actually lives. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

export interface Reference {
  /** Registry host as the user names it, normalized (`docker.io`, `localhost:5000`, `ghcr.io`). */
  readonly registry: string;
  /** Repository path inside the registry (`library/busybox`). */
  readonly repository: string;
  /** Tag; `latest` when neither tag nor digest was given. */
  readonly tag?: string;
  readonly digest?: Digest;
}

// distribution/reference grammar.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const HOST_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const MAX_NAME_LENGTH = 255;

function invalid(input: string, what: string, hint?: string): StowageError {
  return new StowageError('registry/invalid-reference', `invalid image reference ${JSON.stringify(input)}: ${what}`, {
    hint: hint ?? 'references look like [registry[:port]/]repository[:tag][@sha256:<hex>], e.g. docker.io/library/busybox:1.36',
  });
}

function isValidHost(host: string): boolean {
  // host[:port] or [ipv6]:port
  if (host.startsWith('[')) return /^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$/.test(host);
  const [name, port, ...rest] = host.split(':');
  if (rest.length > 0 || name === undefined || name === '') return false;
  if (port !== undefined && !/^[0-9]{1,5}$/.test(port)) return false;
  return name.split('.').every((c) => HOST_COMPONENT.test(c));
}

/** Docker's rule: the first path component is a registry host if it has a `.` or `:` or is `localhost`. */
function looksLikeHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

export function parseReference(input: string): Reference {
  const s = input.trim();
  if (s === '') throw invalid(input, 'it is empty');

  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(d)) {
      throw invalid(input, `digest ${JSON.stringify(d)} is not sha256:<64 lowercase hex characters>`);
    }
    digest = d;
  }

  let tag: string | undefined;
  // A tag follows the last ':' that comes after the last '/' (a ':' before it is a port).
  const lastSlash = rest.lastIndexOf('/');
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) {
      throw invalid(input, `tag ${JSON.stringify(tag)} is not valid`, 'tags are 1–128 characters of letters, digits, _, . and -, not starting with . or -');
    }
  }

  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0 && looksLikeHost(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    repository = rest.slice(slash + 1);
    if (!isValidHost(registry)) throw invalid(input, `registry host ${JSON.stringify(registry)} is not valid`);
    if (registry === 'index.docker.io' || registry === DOCKER_HUB_API_HOST) registry = DOCKER_HUB;
  }
  if (repository === '') throw invalid(input, 'the repository name is empty');
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;

  if (repository !== repository.toLowerCase()) {
    throw invalid(input, `repository name ${JSON.stringify(repository)} must be lowercase`, `use ${JSON.stringify(repository.toLowerCase())}`);
  }
  for (const component of repository.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      throw invalid(
        input,
        component === '' ? 'the repository has an empty path component' : `repository path component ${JSON.stringify(component)} is not valid`,
        'repository path components are lowercase letters and digits, separated by ".", "_", "__" or "-"',
      );
    }
  }
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) {
    throw invalid(input, `the name is longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** Canonical string form: `registry/repository[:tag][@digest]`. */
export function formatReference(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** Repository with registry, no tag or digest; what errors and logs name. */
export function repositoryName(ref: Pick<Reference, 'registry' | 'repository'>): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The identifier to ask the registry for: the digest if pinned, else the tag. */
export function manifestIdentifier(ref: Reference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** Host to talk to for a registry name (`docker.io` lives at registry-1.docker.io). */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
}
