/**
 * Differences between stowage and Buildah 1.28 that are expected, each with the reason: Buildah
 * bugs, features Buildah 1.28 predates (it is from 2022; see DOCKERFILE.md A26), and choices stowage
 * documents. A difference matching none of these is UNEXPECTED and fails `npm run compare`.
 * Matchers are narrow on purpose (a path, a field, the instruction that caused it) so a new real
 * bug is not swallowed.
 */
import type { CaseContext, ClassifiedDifference, Difference } from './diff.js';

export interface KnownDifference {
  /** Shown after `known:` in the report. */
  reason: string;
  matches(d: Difference, ctx: CaseContext): boolean;
}

/** Mount points Buildah's chroot isolation creates for RUN and leaves behind, empty, in the layer. */
const BUILDAH_RUN_STUBS = new Set(['/dev', '/proc', '/sys', '/run', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf']);

/** Instructions of a Dockerfile as [keyword, rest] (continuations joined; good enough for matching). */
export function instructions(dockerfile: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of dockerfile.replace(/\\\r?\n/g, ' ').split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (m && !line.trimStart().startsWith('#')) out.push([m[1]!.toUpperCase(), m[2]!.trim()]);
  }
  return out;
}

/** Absolute WORKDIRs of the file with every ancestor, as stowage resolves them (no ENV expansion: literal paths only). */
function workdirPaths(dockerfile: string): Set<string> {
  const out = new Set<string>();
  let cwd = '/';
  for (const [kw, rest] of instructions(dockerfile)) {
    if (kw === 'FROM') cwd = '/';
    if (kw !== 'WORKDIR') continue;
    cwd = rest.startsWith('/') ? rest : `${cwd.replace(/\/$/, '')}/${rest}`;
    const parts = cwd.split('/').filter((p) => p !== '');
    for (let i = 1; i <= parts.length; i++) out.add('/' + parts.slice(0, i).join('/'));
  }
  return out;
}

/** `COPY/ADD --chmod=NNN … <dest>` → [mode, dest] for octal modes. */
function chmodCopies(dockerfile: string): [number, string][] {
  const out: [number, string][] = [];
  for (const [kw, rest] of instructions(dockerfile)) {
    if (kw !== 'COPY' && kw !== 'ADD') continue;
    const m = /--chmod=([0-7]{3,4})\b/.exec(rest);
    const words = rest.split(/\s+/);
    if (m) out.push([parseInt(m[1]!, 8), words[words.length - 1]!]);
  }
  return out;
}

/** Destinations of `ADD --chown=<user>` (no group) lines. */
function addChownUserOnlyDests(dockerfile: string): string[] {
  return instructions(dockerfile).flatMap(([kw, rest]) => {
    if (kw !== 'ADD' || !/--chown=[^:\s]+(\s|$)/.test(rest)) return [];
    const words = rest.split(/\s+/);
    return [words[words.length - 1]!.replace(/\/+$/, '')];
  });
}

/** Absolute `RUN --mount` targets with every ancestor directory. */
function runMountTargetAncestors(dockerfile: string): Set<string> {
  const out = new Set<string>();
  for (const [kw, rest] of instructions(dockerfile)) {
    if (kw !== 'RUN') continue;
    for (const m of rest.matchAll(/--mount=\S*?\b(?:target|dst|destination)=(\/[^,\s]*)/g)) {
      const parts = m[1]!.split('/').filter((p) => p !== '');
      for (let i = 1; i <= parts.length; i++) out.add('/' + parts.slice(0, i).join('/'));
    }
  }
  return out;
}

/** Destinations (absolute, no trailing slash) of COPY/ADD lines that read the build context (no --from). */
function contextCopyDests(dockerfile: string): string[] {
  return instructions(dockerfile).flatMap(([kw, rest]) => {
    if ((kw !== 'COPY' && kw !== 'ADD') || /--from=/.test(rest)) return [];
    const dest = rest.split(/\s+/).pop()!;
    return dest.startsWith('/') ? [dest.replace(/\/+$/, '') || '/'] : [];
  });
}

/** Buildah keeps EXPOSE words verbatim; Docker expands `a-b` ranges and lowercases the protocol. */
function dockerExposeKeys(key: string): string[] {
  const [ports, proto = 'tcp'] = key.split('/');
  const range = /^(\d+)-(\d+)$/.exec(ports!);
  const numbers = range ? Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i) : [ports];
  return numbers.map((n) => `${n}/${proto.toLowerCase()}`);
}

/** `uid=1000(app) gid=50(staff) groups=50(staff),1000(app)` → ids (busybox `id` output). */
function parseIdOutput(text: string | undefined): { uid: string; gid: string; groups: Set<string> } | undefined {
  const m = /^uid=(\d+)\S* gid=(\d+)\S*(?: groups=(\S+))?\n?$/.exec(text ?? '');
  if (!m) return undefined;
  return { uid: m[1]!, gid: m[2]!, groups: new Set((m[3] ?? '').split(',').filter((g) => g !== '').map((g) => g.replace(/\(.*$/, ''))) };
}

export const KNOWN_DIFFERENCES: readonly KnownDifference[] = [
  {
    reason: 'buildah 1.28 bug: RUN mount points (/dev /proc /sys /run /etc/hosts …) stay in the layer as empty stubs; BuildKit and stowage remove them (A21)',
    matches: (d) =>
      d.kind === 'only-in-buildah' && BUILDAH_RUN_STUBS.has(d.path) && (d.buildah.type === 'dir' || (d.buildah.type === 'file' && d.buildah.size === 0)),
  },
  {
    reason: 'buildah 1.28 bug: directories it creates to hold RUN --mount targets stay in the layer; BuildKit and stowage remove the stubs (A21)',
    matches: (d, ctx) => d.kind === 'only-in-buildah' && d.buildah.type === 'dir' && runMountTargetAncestors(ctx.dockerfile).has(d.path),
  },
  {
    reason: 'buildah 1.28 gap: an ARG declared in a stage is not in scope in stages built FROM it; BuildKit inherits it (A7)',
    // The stages case prints `[${STAGE_ARG:-unset}]` from child stages of the one declaring it.
    matches: (d, ctx) =>
      d.kind === 'content' &&
      ctx.caseName === 'stages' &&
      d.stowage.preview !== undefined &&
      d.stowage.preview.includes('[base-arg]') &&
      d.buildah.preview === d.stowage.preview.replace('[base-arg]', '[unset]'),
  },
  {
    reason: 'buildah stamps its own version label (io.buildah.version)',
    matches: (d) => d.kind === 'config' && d.field === 'Labels' && d.key === 'io.buildah.version' && d.stowage === undefined,
  },
  {
    reason: 'stowage follows BuildKit: COPY --chmod also applies to the destination dirs it creates (A10, A26); buildah makes them 0755',
    matches: (d, ctx) =>
      d.kind === 'entry' &&
      d.field === 'mode' &&
      d.buildah === 0o755 &&
      chmodCopies(ctx.dockerfile).some(([mode, dest]) => mode === d.stowage && (dest.startsWith(d.path + '/') || dest === d.path)),
  },
  {
    reason: 'buildah 1.28 gap: a shell-form CMD/ENTRYPOINT ignores SHELL (always /bin/sh -c); Docker wraps it with the SHELL in effect (A15)',
    matches: (d, ctx) =>
      d.kind === 'config' &&
      (d.field === 'Cmd' || d.field === 'Entrypoint') &&
      Array.isArray(d.buildah) &&
      Array.isArray(d.stowage) &&
      d.buildah[0] === '/bin/sh' &&
      d.buildah[1] === '-c' &&
      d.buildah.length === 3 &&
      d.stowage[d.stowage.length - 1] === d.buildah[2] &&
      canonical(ctx.stowageConfig.Shell) === canonical(d.stowage.slice(0, -1)),
  },
  {
    reason: 'buildah 1.28 gap: EXPOSE keeps port ranges and protocol casing verbatim; Docker expands ranges and lowercases (A18)',
    matches: (d, ctx) => {
      if (d.kind !== 'config' || d.field !== 'ExposedPorts' || d.key === undefined) return false;
      const buildahKeys = Object.keys((ctx.buildahConfig.ExposedPorts ?? {}) as object);
      const stowageKeys = new Set(Object.keys((ctx.stowageConfig.ExposedPorts ?? {}) as object));
      const expanded = new Set(buildahKeys.flatMap(dockerExposeKeys));
      // Only-in-buildah: a raw key whose Docker form stowage has; only-in-stowage: the Docker form of a raw buildah key.
      if (d.stowage === undefined) return dockerExposeKeys(d.key).every((k) => stowageKeys.has(k)) && dockerExposeKeys(d.key).join() !== d.key;
      return d.buildah === undefined && expanded.has(d.key);
    },
  },
  {
    reason: "buildah 1.28 bug: ADD --chown=<user> on a local archive keeps the archive's gid for extracted entries instead of the user's primary group (A10)",
    matches: (d, ctx) => d.kind === 'entry' && d.field === 'gid' && addChownUserOnlyDests(ctx.dockerfile).some((dest) => d.path.startsWith(dest + '/')),
  },
  {
    reason: 'stowage choice (engine/copy/copy.ts): xattrs of build-context files are not copied, only those of --from trees; BuildKit and buildah keep them (A10) — for the lead to decide',
    matches: (d, ctx) =>
      d.kind === 'entry' &&
      d.field === 'xattrs' &&
      Object.keys(d.stowage as object).length === 0 &&
      contextCopyDests(ctx.dockerfile).some((dest) => d.path === dest || d.path.startsWith(dest + '/')),
  },
  {
    reason: 'peer disagreement (A19, A26): stowage follows BuildKit and keeps what RUN writes under a VOLUME path after VOLUME; buildah 1.28 discards it like the classic builder',
    matches: (d, ctx) =>
      d.kind === 'only-in-stowage' && Object.keys((ctx.stowageConfig.Volumes ?? {}) as object).some((v) => d.path.startsWith(v.replace(/\/+$/, '') + '/')),
  },
  {
    reason: 'buildah 1.28 gap (seen with bud --layers): WORKDIR is created only when a later step needs it; BuildKit and stowage always create it (A12)',
    matches: (d, ctx) => d.kind === 'only-in-stowage' && d.stowage.type === 'dir' && workdirPaths(ctx.dockerfile).has(d.path),
  },
  {
    reason: 'buildah 1.28 adds the primary gid to a RUN process\'s supplementary groups; BuildKit (runc) sets only the /etc/group memberships, none for user:group (A13)',
    matches: (d) => {
      if (d.kind !== 'content') return false;
      const s = parseIdOutput(d.stowage.preview);
      const b = parseIdOutput(d.buildah.preview);
      if (!s || !b || s.uid !== b.uid || s.gid !== b.gid) return false;
      const expected = new Set([...s.groups, s.gid]);
      return expected.size === b.groups.size && [...expected].every((g) => b.groups.has(g));
    },
  },
];

function canonical(v: unknown): string {
  return JSON.stringify(v);
}

/** Marks each difference known (with the table's reason) or leaves it unexpected. */
export function classify(differences: readonly Difference[], ctx: CaseContext, known: readonly KnownDifference[] = KNOWN_DIFFERENCES): ClassifiedDifference[] {
  return differences.map((difference) => {
    const hit = known.find((k) => k.matches(difference, ctx));
    return hit ? { difference, known: hit.reason } : { difference };
  });
}
