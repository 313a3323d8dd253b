/**
 * The inputs of a step that are not in its key chain, gathered before the step runs: content
 * digests of the context files COPY/ADD and RUN bind mounts read (after .dockerignore; mtimes and
 * owners do not count), the final key of a stage read by `--from`, the digest of an image read by
 * `--from`. Returns 'uncacheable' when an input cannot be known before running (ADD of a URL
 * without --checksum, a stage built without a key) or cannot be read (the step then runs and
 * reports the real error itself).
 */
import type { Instruction } from '../dockerfile/types.js';
import { expandInStage, resolveRunMounts, type StageState } from '../dockerfile/stage-env.js';
import type { Platform } from '../image/types.js';
import type { ContextSources, ImageDigests } from './ports.js';
import type { SourceInput, StepInputs } from './keys.js';

export interface InputPorts {
  context: ContextSources;
  /** Earlier stages by index: a `--from` naming one keys on its final key. */
  stageResults: ReadonlyMap<number, { readonly name?: string | undefined; readonly cacheKey?: string | undefined }>;
  images: ImageDigests;
  platform: Platform;
  signal: AbortSignal;
}

export type CollectedInputs = StepInputs | 'uncacheable';

export async function collectStepInputs(instr: Instruction, state: StageState, ports: InputPorts): Promise<CollectedInputs> {
  try {
    return await collect(instr, state, ports);
  } catch (e) {
    ports.signal.throwIfAborted();
    void e;
    return 'uncacheable';
  }
}

async function collect(instr: Instruction, state: StageState, ports: InputPorts): Promise<CollectedInputs> {
  const expand = (w: string) => expandInStage(state, w);
  switch (instr.kind) {
    case 'copy':
    case 'add': {
      const from = instr.kind === 'copy' ? instr.from : undefined;
      if (from !== undefined) {
        const identity = await fromIdentity(expand(from), ports);
        return identity === undefined ? 'uncacheable' : { fromIdentity: identity };
      }
      const patterns = instr.sources.map(expand);
      if (instr.kind === 'add' && patterns.some(isRemote) && instr.checksum === undefined) return 'uncacheable';
      const parents = instr.kind === 'copy' ? (instr.parents ?? false) : false;
      const excludes = instr.exclude.map(expand);
      const sources: SourceInput[] = [];
      for (const pattern of patterns) {
        if (isRemote(pattern)) continue; // pinned by --checksum, which is in the key
        const resolved = await ports.context.resolveSources([pattern], { allowEmptyWildcard: true, parents, excludes, signal: ports.signal });
        for (const r of resolved) {
          const digests = await ports.context.fileDigests([r.resolvedRel], ports.signal);
          sources.push({ path: r.relPath, ...(r.parentsPath !== undefined ? { parentsPath: r.parentsPath } : {}), isDir: r.isDir, digest: digests.get(r.resolvedRel)! });
        }
      }
      return { sources };
    }
    case 'run': {
      const mounts = resolveRunMounts(instr, state);
      const identities: (string | null)[] = [];
      for (const m of mounts) {
        if (m.type !== 'bind' && !(m.type === 'cache' && m.from !== undefined)) {
          identities.push(null); // cache contents, tmpfs, secrets and ssh are deliberately not content inputs
          continue;
        }
        if (m.from !== undefined) {
          const identity = await fromIdentity(m.from, ports);
          if (identity === undefined) return 'uncacheable';
          identities.push(identity);
          continue;
        }
        const rel = (m.source ?? '.').replace(/^\/+/, '') || '.';
        const digests = await ports.context.fileDigests([rel], ports.signal);
        identities.push(digests.get(rel)!);
      }
      return identities.length > 0 ? { mountIdentities: identities } : {};
    }
    default:
      return {};
  }
}

/** `--from=<stage|index|image>`: a stage's final key, or an image's manifest digest. */
async function fromIdentity(from: string, ports: InputPorts): Promise<string | undefined> {
  const ref = from.toLowerCase();
  const idx = /^\d+$/.test(ref) ? Number(ref) : undefined;
  for (const [i, r] of ports.stageResults) {
    if ((idx !== undefined && i === idx) || (r.name !== undefined && r.name === ref)) return r.cacheKey !== undefined ? `stage:${r.cacheKey}` : undefined;
  }
  const image = await ports.images.resolve(from, ports.platform, ports.signal);
  return `image:${image.digest}`;
}

function isRemote(pattern: string): boolean {
  return /^(https?|git):\/\//i.test(pattern) || /^git@/.test(pattern);
}
