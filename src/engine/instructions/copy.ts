/**
 * COPY: sources from the build context (filtered by .dockerignore), from an earlier stage's rootfs
 * (`--from=<stage|index>`, owners kept, no .dockerignore) or from an external image's rootfs
 * (`--from=<image>`), and heredoc sources expanded with the stage env when unquoted (A3, A10).
 * `--link` is treated as a normal copy (same files, same layer).
 */
import { join as joinPath } from 'node:path';
import type { CopyInstruction } from '../../dockerfile/types.js';
import { expandInStage, historyFor, type StageState } from '../../dockerfile/stage-env.js';
import type { ImageConfig } from '../../image/types.js';
import { copyIntoRootfs, type CopySource, type InlineSource } from '../copy/copy.js';
import { canonicalRoot } from '../copy/in-root.js';
import { addIntoRootfs, isUrl, type AddSource } from '../copy/add.js';
import { resolveSourcesIn } from '../context/resolve.js';
import { resolveChown } from '../passwd.js';
import type { StepEnvironment } from './types.js';
import { commitLayer, layerOutcome } from './commit.js';
import type { StepOutcome } from './outcome.js';
import { withLocation } from './located.js';

export async function executeCopy(instr: CopyInstruction, state: StageState, config: ImageConfig, env: StepEnvironment): Promise<StepOutcome> {
  const where = { file: env.dockerfilePath, range: instr.range };
  try {
    await copyFiles(instr, state, config, env, { unpackArchives: false });
  } catch (e) {
    throw withLocation(e, where);
  }
  const layer = await commitLayer(env);
  return { state, ...layerOutcome(layer, historyFor(instr, state)) };
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
  const expand = (word: string) => expandInStage(state, word, { escape: env.escape });
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
  const patterns = instr.sources.map(expand);
  const excludes = instr.exclude.map(expand);
  const parents = instr.kind === 'copy' ? (instr.parents ?? false) : false;
  // Heredoc sources are inline files (A3): expanded with the stage env unless the name was quoted.
  const inline: InlineSource[] = instr.heredocs.map((h) => ({ kind: 'inline', name: h.name, content: h.expand ? expand(h.body) : h.body }));
  const resolveOpts = { allowEmptyWildcard: true, parents, excludes, signal };
  const resolve = async (pattern: string): Promise<CopySource[]> =>
    fromContext
      ? ports.context.resolveSources([pattern], resolveOpts)
      : resolveSourcesIn(await canonicalRoot(sourceRoot), [pattern], { ...resolveOpts, mode: 'chroot' });
  const sources: AddSource[] = [];
  for (const pattern of patterns) {
    // ADD downloads http(s) URLs; COPY treats them as (missing) paths, as BuildKit rejects them at parse time.
    if (instr.kind === 'add' && isUrl(pattern)) sources.push({ kind: 'url', url: pattern });
    else sources.push(...(await resolve(pattern)));
  }
  sources.push(...inline);
  if (sources.length === 0) return; // only wildcards that matched nothing: allowed (A10)
  if (instr.kind === 'add') {
    await addIntoRootfs({
      ...copyOptions(),
      sources,
      ...(instr.checksum ? { checksum: expand(instr.checksum) } : {}),
      ...(options.unpackArchives ? {} : { unpack: false }),
      ...(instr.unpack !== undefined ? { unpack: instr.unpack } : {}),
      // Downloads go under the cache dir, never the system temp dir: with --isolation=none that
      // is the image's own /tmp (absent in FROM scratch, and a stray entry in the layer).
      tmpDir: joinPath(env.options.cacheDir, 'add-tmp'),
      ...(env.options.tls ? { tls: env.options.tls } : {}),
      ...(env.options.proxy ? { proxy: env.options.proxy } : {}),
    });
    return;
  }
  await copyIntoRootfs({ ...copyOptions(), sources: sources as CopySource[] });

  function copyOptions() {
    return {
      rootfs: rootfs.path,
      sourceRoot,
      dest,
      workdir,
      ...(chown ? { chown } : {}),
      ...(chmod !== undefined ? { chmod } : {}),
      parents,
      excludes,
      link: instr.link ?? false,
      fromContext,
      ...(fromContext ? { ignore: ports.context.ignore } : {}),
      signal,
    };
  }
}

async function sourceRootFor(from: string, env: StepEnvironment): Promise<string> {
  const ref = from.toLowerCase();
  const idx = /^\d+$/.test(ref) ? Number(ref) : undefined;
  for (const [i, r] of env.ports.stageResults) {
    if ((idx !== undefined && i === idx) || (r.name !== undefined && r.name === ref)) {
      if (r.rootfsDir) return r.rootfsDir;
      if (r.ensureRootfs) return r.ensureRootfs(env.options.signal);
    }
  }
  return env.ports.imageRootfs(from, env.options.signal);
}
