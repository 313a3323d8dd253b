/**
 * COPY: sources from the build context (filtered by .dockerignore), from an earlier stage's rootfs
 * (`--from=<stage|index>`, owners kept, no .dockerignore) or from an external image's rootfs
 * (`--from=<image>`), and heredoc sources expanded with the stage env when unquoted (A3, A10).
 * `--link` is treated as a normal copy (same files, same layer).
 */
import type { CopyInstruction } from '../../dockerfile/types.js';
import { expandInStage, historyFor, type StageState } from '../../dockerfile/stage-env.js';
import type { ImageConfig } from '../../image/types.js';
import { copyIntoRootfs } from '../copy/copy.js';
import { resolveChown } from '../passwd.js';
import type { StepEnvironment } from '../stage-runner.js';
import { commitLayer } from './commit.js';
import type { StepOutcome } from './outcome.js';
import { withLocation } from './run.js';

export async function executeCopy(instr: CopyInstruction, state: StageState, config: ImageConfig, env: StepEnvironment): Promise<StepOutcome> {
  const where = { file: env.dockerfilePath, range: instr.range };
  try {
    await copyFiles(instr, state, config, env, { unpackArchives: false });
  } catch (e) {
    throw withLocation(e, where);
  }
  const layer = await commitLayer(env);
  return { state, layer, history: { createdBy: historyFor(instr, state), emptyLayer: false } };
}

/** Shared by COPY and ADD: where the sources come from and who owns the result. */
export async function copyFiles(
  instr: CopyInstruction | import('../../dockerfile/types.js').AddInstruction,
  state: StageState,
  config: ImageConfig,
  env: StepEnvironment,
  options: { unpackArchives: boolean },
): Promise<void> {
  const { rootfs, ports } = env;
  const signal = env.options.signal;
  const expand = (word: string) => expandInStage(state, word);
  const workdir = config.config?.WorkingDir || '/';
  const dest = expand(instr.dest);
  const chown = instr.chown ? await resolveChown(rootfs.path, expand(instr.chown)) : undefined;
  const chmod = instr.chmod ? expand(instr.chmod) : undefined;
  const from = instr.kind === 'copy' ? instr.from : undefined;

  let sourceRoot: string;
  let fromContext: boolean;
  if (from === undefined) {
    sourceRoot = ports.context.dir;
    fromContext = true;
  } else {
    sourceRoot = await sourceRootFor(from, env);
    fromContext = false;
  }
  const heredocs = (instr.heredocs ?? []).map((h) => ({ name: h.name, content: h.expand ? expand(h.body) : h.body }));
  await copyIntoRootfs({
    rootfs: rootfs.path,
    sourceRoot,
    sources: instr.sources.map(expand),
    heredocs,
    dest,
    workdir,
    ...(chown ? { chown } : {}),
    ...(chmod ? { chmod } : {}),
    parents: instr.parents ?? false,
    excludes: (instr.exclude ?? []).map(expand),
    link: instr.link ?? false,
    fromContext,
    ...(fromContext ? { ignore: ports.context.ignore } : {}),
    unpackArchives: options.unpackArchives,
    signal,
  });
}

async function sourceRootFor(from: string, env: StepEnvironment): Promise<string> {
  const ref = from.toLowerCase();
  const idx = /^\d+$/.test(ref) ? Number(ref) : undefined;
  for (const [i, r] of env.ports.stageResults) {
    if ((idx !== undefined && i === idx) || (r.name !== undefined && r.name === ref)) {
      if (r.rootfsDir) return r.rootfsDir;
    }
  }
  return env.ports.imageRootfs(from, env.options.signal);
}
