/**
 * The `oci:<dir>[:tag]` and `docker-archive:<file>[:ref]` transport names, parsed one way for every
 * command (spec destinations, `stowage executor --destination`, `stowage copy`). Pure: no I/O.
 * As in skopeo (containers/image), the first `:` after `oci:`/`docker-archive:` ends the path, so a
 * path cannot contain `:` and a layout tag may (an OCI `ref.name` allows `:` and `/`).
 */
import { StowageError } from '../util/errors.js';

/** The same grammar containers/image's oci transport accepts for a reference. */
const LAYOUT_TAG_RE = /^[A-Za-z0-9._-]+(?:[:/][A-Za-z0-9._-]+)*$/;

export interface OciReference {
  dir: string;
  tag?: string;
}

/** `oci:<dir>[:tag]`. */
export function parseOciReference(s: string): OciReference {
  if (!s.startsWith('oci:')) {
    throw new StowageError('store/invalid-reference', `${JSON.stringify(s)} is not an oci: reference`, { hint: 'write oci:<dir>[:tag]' });
  }
  const rest = s.slice('oci:'.length);
  const colon = rest.indexOf(':');
  const dir = colon < 0 ? rest : rest.slice(0, colon);
  const tag = colon < 0 ? undefined : rest.slice(colon + 1);
  if (dir === '') throw new StowageError('store/invalid-reference', `${JSON.stringify(s)} names no directory`, { hint: 'write oci:<dir>[:tag]' });
  if (tag !== undefined) {
    checkLayoutTag(tag, s);
    return { dir, tag };
  }
  return { dir };
}

export function checkLayoutTag(tag: string, context: string): void {
  if (!LAYOUT_TAG_RE.test(tag)) {
    throw new StowageError('store/invalid-reference', `invalid OCI layout tag ${JSON.stringify(tag)} in ${JSON.stringify(context)}`, {
      hint: 'a tag is letters, digits, ".", "_", "-", separated by ":" or "/"',
    });
  }
}

export interface DockerArchiveReference {
  file: string;
  ref?: string;
}

/** `docker-archive:<file>[:ref]`; the reference is normalised as RepoTags carries it. */
export function parseDockerArchiveReference(s: string): DockerArchiveReference {
  const prefix = 'docker-archive:';
  if (!s.startsWith(prefix)) {
    throw new StowageError('store/invalid-reference', `${JSON.stringify(s)} is not a docker-archive: reference`, { hint: 'write docker-archive:<file>[:name:tag]' });
  }
  const rest = s.slice(prefix.length);
  const colon = rest.indexOf(':');
  const file = colon < 0 ? rest : rest.slice(0, colon);
  if (file === '') throw new StowageError('store/invalid-reference', `${JSON.stringify(s)} names no file`, { hint: 'write docker-archive:<file>[:name:tag]' });
  if (colon < 0) return { file };
  return { file, ref: normalizeArchiveRef(rest.slice(colon + 1)) };
}

const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;

/** `name[:tag]` as `docker save` writes RepoTags (familiar form): the tag defaults to `latest`; digests cannot be tags. */
export function normalizeArchiveRef(ref: string): string {
  const bad = (why: string): never => {
    throw new StowageError('store/invalid-reference', `invalid image name ${JSON.stringify(ref)} for a docker archive: ${why}`, {
      hint: 'write name[:tag], e.g. myapp:1.0 or registry.example.com:5000/team/app:latest',
    });
  };
  if (ref.includes('@')) bad('a digest cannot be stored in RepoTags');
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  const [repo, tag] = colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
  if (!REPO_RE.test(repo)) bad('the repository must be lowercase letters, digits and separators');
  if (!TAG_RE.test(tag)) bad(`${JSON.stringify(tag)} is not a valid tag`);
  return `${repo}:${tag}`;
}
