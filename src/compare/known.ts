/**
 * Differences between stowage and Buildah 1.28 that are expected, each with the reason: Buildah
 * bugs, features Buildah 1.28 predates (it is from 2022; see DOCKERFILE.md A26), and choices stowage
 * documents. A difference matching none of these is UNEXPECTED and fails `npm run compare`.
 * Matchers are narrow on purpose (a path, a field, a case) so a new real bug is not swallowed.
 */
import type { CaseContext, Difference } from './diff.js';

export interface KnownDifference {
  /** Shown after `known:` in the report. */
  reason: string;
  matches(d: Difference, ctx: CaseContext): boolean;
}

/** Mount points Buildah's chroot isolation creates for RUN and leaves behind, empty, in the layer. */
const BUILDAH_RUN_STUBS = new Set(['/dev', '/proc', '/sys', '/run', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf']);

export const KNOWN_DIFFERENCES: readonly KnownDifference[] = [
  {
    reason: 'buildah 1.28 bug: RUN leaves its mount points (/dev /proc /sys /run /etc/hosts …) as empty stubs in the layer; BuildKit and stowage remove them (A21, A24)',
    matches: (d) =>
      d.kind === 'only-in-buildah' &&
      BUILDAH_RUN_STUBS.has(d.path) &&
      ((d.buildah.type === 'dir') || (d.buildah.type === 'file' && d.buildah.size === 0)),
  },
  {
    reason: 'buildah stamps its own version label (io.buildah.version) into every image',
    matches: (d) => d.kind === 'config' && d.field === 'Labels' && d.key === 'io.buildah.version' && d.stowage === undefined,
  },
];
