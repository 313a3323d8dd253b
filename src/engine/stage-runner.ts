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
import { appendHistory, appendLayer, patchConfig, patchImageConfig, type ImageDraft } from '../image/mutate.js';
import { imageFromParts } from '../image/image.js';
import type { Dockerfile, Instruction, Stage } from '../dockerfile/types.js';
import { initialStageState, stageStartConfigPatch, type StageState } from '../dockerfile/stage-env.js';
import type {
  BuildEvent,
  ImageSource,
  LayerWriterPort,
  SandboxPort,
  SecretsProvider,
  SnapshotterPort,
  StageResult,
  StageRootfs,
  UnpackedLayer,
  UnpackedLayersPort,
} from './instructions/types.js';
import type { BlobStore } from '../store/types.js';
import type { BuildContext } from './context/context.js';
import { executeInstruction } from './instructions/dispatch.js';
import { withLocation } from './instructions/located.js';

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
  /** `--target` name for the TARGETSTAGE arg. */
  targetStage?: string;
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
  /** The Dockerfile's escape character, for expanding words. */
  escape: string;
  ports: StagePorts;
  options: StageOptions;
}

export function createdTime(options: Pick<StageOptions, 'sourceDateEpoch' | 'now'>): string {
  const d = options.sourceDateEpoch !== undefined ? new Date(options.sourceDateEpoch * 1000) : (options.now ?? (() => new Date()))();
  // RFC 3339 as Go writes it: no fractional part when it is zero.
  return d.toISOString().replace('.000Z', 'Z');
}

/**
 * Builds one stage. The returned rootfs stays prepared (for COPY --from and RUN --mount from= of
 * later stages); the caller releases it (`rootfs.release()`) when the whole build is done. On
 * failure it is released here.
 */
export async function buildStage(req: BuildStageRequest): Promise<StageResult & { rootfs: StageRootfs }> {
  const { stage, ports, options } = req;
  const signal = options.signal;
  signal.throwIfAborted();
  options.onEvent?.({ type: 'stage-start', stage: stage.index, ...(stage.name ? { name: stage.name } : {}), base: baseLabel(req) });

  // Unpacked once per machine (the store single-flights per diffId), all layers at once.
  const lowers: UnpackedLayer[] = await Promise.all(req.baseImage.layers.map((layer) => ports.unpacked.ensureUnpacked(layer, signal)));
  const rootfs = await ports.snapshotter.prepare({ lowers, signal });
  try {
    const escape = req.dockerfile.directives.escape;
    let state: StageState = initialStageState({
      baseConfig: req.baseImage.config,
      ...(req.inheritedState !== undefined ? { inherited: req.inheritedState } : {}),
      buildArgs: options.buildArgs,
      platform: options.platform,
      metaArgs: req.dockerfile.metaArgs,
      stage,
      escape,
      ...(req.targetStage !== undefined ? { targetStage: req.targetStage } : {}),
    });
    // PATH ensured (A8) and inherited ONBUILD triggers cleared so grandchildren don't re-run them (A20).
    let draft: ImageDraft<Layer> = { config: patchConfig(req.baseImage.config, stageStartConfigPatch(state)), layers: [...req.baseImage.layers] };
    const env: StepEnvironment = { rootfs, dockerfilePath: req.dockerfilePath, stageIndex: stage.index, escape, ports, options };
    const created = createdTime(options);
    for (const instr of [...req.onbuildTriggers, ...stage.instructions]) {
      signal.throwIfAborted();
      const line = instr.range.start.line;
      options.onEvent?.({ type: 'step-start', stage: stage.index, line, text: instr.original });
      let out;
      try {
        out = await executeInstruction(instr, state, draft.config, env);
      } catch (e) {
        throw withLocation(e, { file: req.dockerfilePath, range: instr.range });
      }
      state = out.state;
      let next = draft.config;
      if (out.configPatch && Object.keys(out.configPatch).length > 0) next = patchConfig(next, out.configPatch);
      if (out.author !== undefined) next = patchImageConfig(next, { author: out.author });
      draft = { config: next, layers: draft.layers };
      if (out.layer) {
        const history: HistoryEntry = { created, created_by: out.history?.createdBy ?? instr.original, comment: HISTORY_COMMENT };
        draft = appendLayer(draft, out.layer, history);
      } else if (out.history) {
        draft = { config: appendHistory(draft.config, { created, created_by: out.history.createdBy, comment: HISTORY_COMMENT }), layers: draft.layers };
      }
      options.onEvent?.({ type: 'step-done', stage: stage.index, line, ...(out.layer ? { layer: out.layer.descriptor.digest } : {}) });
    }
    const platformFields: Partial<ImageConfig> = { created, architecture: options.platform.architecture, os: options.platform.os, variant: options.platform.variant };
    const image = imageFromParts({ config: finalizeConfig(patchImageConfig(draft.config, platformFields)), layers: draft.layers, format: 'oci' });
    options.onEvent?.({ type: 'stage-done', stage: stage.index, digest: image.digest });
    return { image, rootfsDir: rootfs.path, rootfs, finalState: state, ...(stage.name !== undefined ? { name: stage.name } : {}) };
  } catch (e) {
    await rootfs.release().catch(() => undefined);
    throw e;
  }
}

/**
 * BuildKit serialises the container config with `omitempty`: a reset CMD/ENTRYPOINT or cleared
 * OnBuild is absent, not `null`.
 */
export function finalizeConfig(config: ImageConfig): ImageConfig {
  const cc = config.config ?? {};
  const isEmpty = (v: unknown) => v === null || v === undefined || (Array.isArray(v) ? v.length === 0 : typeof v === 'object' && Object.keys(v).length === 0);
  const drop = Object.entries(cc).filter(([k, v]) => k !== 'Env' && isEmpty(v));
  if (drop.length === 0) return config;
  return patchConfig(config, Object.fromEntries(drop.map(([k]) => [k, undefined])));
}

/** BuildKit's marker on every history entry it writes. */
export const HISTORY_COMMENT = 'buildkit.dockerfile.v0';

function baseLabel(req: BuildStageRequest): string {
  const from = req.stage.from;
  return from.image ?? 'scratch';
}
