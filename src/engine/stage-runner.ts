/**
 * Runs one stage of a Dockerfile: prepares its rootfs from the base image's unpacked layers, then
 * drives every instruction — metadata ones through the front end's stage-env step function (config
 * patch + history), RUN/COPY/ADD/WORKDIR through their executors in ./instructions — snapshotting
 * after each filesystem step into a deterministic layer.
 *
 * Decisions (DOCKERFILE.md A26):
 * - every RUN, COPY, ADD and WORKDIR (other than `/`) yields a layer, even when it changed nothing
 *   (BuildKit's behaviour; kaniko would skip empty snapshots);
 * - `COPY --link` is a normal copy onto the current rootfs: same files, same layer, no merge;
 * - later writes under a VOLUME path are kept (BuildKit).
 */
import type { Image, Layer } from '../image/blob.js';
import type { HistoryEntry, ImageConfig, Platform } from '../image/types.js';
import { appendHistory, appendLayer, patchConfig } from '../image/mutate.js';
import { imageFromParts } from '../image/image.js';
import type { Dockerfile, Instruction, Stage } from '../dockerfile/types.js';
import { applyMetadataInstruction, initialStageState, type StageState } from '../dockerfile/stage-env.js';
import { StowageError } from '../util/errors.js';
import type {
  BuildEvent,
  ImageSource,
  LayerWriterPort,
  SandboxPort,
  SecretsProvider,
  SnapshotterPort,
  StageResult,
  StageRootfs,
  UnpackedLayersPort,
} from './instructions/types.js';
import type { BlobStore } from '../store/types.js';
import type { BuildContext } from './context/context.js';
import { executeInstruction, isFilesystemInstruction } from './instructions/dispatch.js';

export type Isolation = 'bwrap' | 'chroot' | 'none';

export interface StagePorts {
  store: BlobStore;
  unpacked: UnpackedLayersPort;
  snapshotter: SnapshotterPort;
  layerWriter: LayerWriterPort;
  sandbox: SandboxPort;
  context: BuildContext;
  /** Results of earlier stages of this Dockerfile, by stage index (FROM <stage>, COPY --from). */
  stageResults: ReadonlyMap<number, StageResult>;
  /** External images for COPY --from=<image> and RUN --mount from=<image>. */
  images: ImageSource;
  /** Rootfs of an external image (materialised once per build), for COPY --from=<image>. */
  imageRootfs(ref: string, signal: AbortSignal): Promise<string>;
}

export interface StageOptions {
  buildArgs: Readonly<Record<string, string>>;
  platform: Platform;
  /** Seconds; sets `created` and clamps layer mtimes (SOURCE_DATE_EPOCH / --reproducible). */
  sourceDateEpoch?: number;
  network: 'default' | 'none' | 'host';
  secrets?: SecretsProvider;
  cacheDir: string;
  signal: AbortSignal;
  onEvent?: (event: BuildEvent) => void;
  /** Time used for `created` when no sourceDateEpoch is given; injected so results are testable. */
  now?: () => Date;
}

export interface BuildStageRequest {
  stage: Stage;
  dockerfile: Dockerfile;
  /** The Dockerfile's path as shown to the user in errors. */
  dockerfilePath: string;
  /** The base, already resolved (scratch → an empty image). */
  baseImage: Image;
  /** Stage-env state inherited from a base stage (its ARGs), when FROM names a stage. */
  inheritedState?: StageState;
  /** ONBUILD triggers to run right after FROM (already taken from the base config). */
  onbuildTriggers: Instruction[];
  ports: StagePorts;
  options: StageOptions;
}

/** What an executor needs besides the instruction; one per stage run. */
export interface StepEnvironment {
  rootfs: StageRootfs;
  dockerfilePath: string;
  stageIndex: number;
  ports: StagePorts;
  options: StageOptions;
}

/** The result of one executing instruction: the layer plus what (if anything) to ignore in it. */
export interface StepLayerResult {
  layer: Layer;
  history: HistoryEntry;
}

export function createdTime(options: Pick<StageOptions, 'sourceDateEpoch' | 'now'>): string {
  if (options.sourceDateEpoch !== undefined) return new Date(options.sourceDateEpoch * 1000).toISOString().replace('.000Z', 'Z');
  return (options.now ?? (() => new Date()))().toISOString();
}

/**
 * Builds one stage. The returned rootfs stays prepared (for COPY --from of later stages); the caller
 * releases it through `releaseRootfs` when the whole build is done.
 */
export async function buildStage(req: BuildStageRequest): Promise<StageResult & { rootfs: StageRootfs }> {
  const { stage, ports, options } = req;
  const signal = options.signal;
  signal.throwIfAborted();
  options.onEvent?.({ type: 'stage-start', stage: stage.index, ...(stage.name ? { name: stage.name } : {}), base: baseLabel(req) });

  const lowers: string[] = [];
  for (const layer of req.baseImage.layers) lowers.push(await ports.unpacked.ensureUnpacked(layer, signal));
  const rootfs = await ports.snapshotter.prepare({ lowers, signal });
  try {
    let config: ImageConfig = structuredClone(req.baseImage.config);
    // BuildKit clears inherited triggers: grandchildren must not run them again (A20).
    if (config.config?.OnBuild) config = patchConfig(config, { OnBuild: null });
    let layers: Layer[] = [...req.baseImage.layers];
    let state: StageState = initialStageState({
      baseConfig: config,
      inherited: req.inheritedState,
      buildArgs: req.options.buildArgs,
      platform: options.platform,
      metaArgs: req.dockerfile.metaArgs,
      stage,
    });
    const env: StepEnvironment = { rootfs, dockerfilePath: req.dockerfilePath, stageIndex: stage.index, ports, options };
    const created = createdTime(options);
    const instructions = [...req.onbuildTriggers, ...stage.instructions];
    for (const instr of instructions) {
      signal.throwIfAborted();
      options.onEvent?.({ type: 'step-start', stage: stage.index, line: instr.range.start.line, text: instr.original });
      if (isFilesystemInstruction(instr)) {
        const out = await executeInstruction(instr, state, config, env);
        state = out.state;
        if (out.configPatch) config = patchConfig(config, out.configPatch);
        if (out.layer) {
          const history: HistoryEntry = { created, created_by: out.createdBy, comment: 'buildkit.dockerfile.v0' };
          ({ config } = appendLayer({ config }, { descriptor: out.layer.descriptor, diffId: out.layer.diffId }, history));
          layers = [...layers, out.layer];
          options.onEvent?.({ type: 'step-done', stage: stage.index, line: instr.range.start.line, layer: out.layer.descriptor.digest });
        } else {
          config = appendHistory(config, { created, created_by: out.createdBy, comment: 'buildkit.dockerfile.v0', empty_layer: true });
          options.onEvent?.({ type: 'step-done', stage: stage.index, line: instr.range.start.line });
        }
        continue;
      }
      const meta = applyMetadataInstruction(state, instr, { platform: options.platform });
      state = meta.state;
      if (meta.configPatch && Object.keys(meta.configPatch).length > 0) config = patchConfig(config, meta.configPatch);
      if (meta.author !== undefined) config = { ...config, author: meta.author };
      if (meta.createdBy !== undefined) {
        config = appendHistory(config, { created, created_by: meta.createdBy, comment: 'buildkit.dockerfile.v0', empty_layer: true });
      }
      options.onEvent?.({ type: 'step-done', stage: stage.index, line: instr.range.start.line });
    }
    config = { ...config, created, architecture: options.platform.architecture, os: options.platform.os };
    if (options.platform.variant) config = { ...config, variant: options.platform.variant };
    const image = imageFromParts({ config, layers, format: 'oci' });
    options.onEvent?.({ type: 'stage-done', stage: stage.index, digest: image.digest });
    return { image, rootfsDir: rootfs.path, rootfs, finalState: state };
  } catch (e) {
    await rootfs.release().catch(() => undefined);
    throw e;
  }
}

function baseLabel(req: BuildStageRequest): string {
  const from = req.stage.from;
  return from.image ?? 'scratch';
}

export function stageError(code: string, message: string, file: string, instr: Instruction, hint?: string, cause?: unknown): StowageError {
  return new StowageError(code, message, {
    file,
    range: instr.range,
    ...(hint ? { hint } : {}),
    ...(cause === undefined ? {} : { cause }),
  });
}
