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
import type { StageResult, StageRootfs, UnpackedLayer } from './instructions/types.js';
import { executeInstruction, executeMetadataInstruction, touchesFilesystem } from './instructions/dispatch.js';
import type { StepOutcome } from './instructions/outcome.js';
import { baseParent, CACHE_KEY_VERSION, outputKey, stageFinalKey, stepKey, type BaseIdentity } from '../cache/keys.js';
import { decodeConfigPatch, encodeConfigPatch, type StepCacheEntry } from '../cache/entry.js';
import type { StepCacheHit, StepCachePort } from '../cache/step-cache.js';
import { collectStepInputs } from '../cache/inputs.js';
import { withLocation } from './instructions/located.js';
import { snapshotLayer } from './instructions/commit.js';
import { isSharedRoot, type ExtractedTree } from './build-root/build-root.js';
import type { DeferredSnapshot, StageOptions, StagePorts, StepEnvironment } from './instructions/types.js';

// Kept here too for callers that know these as the stage runner's types.
export type { StageOptions, StagePorts, StepEnvironment } from './instructions/types.js';



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
  /** The step cache and this stage's base as key material; absent: every step runs (--no-cache). */
  cache?: { port: StepCachePort; base: BaseIdentity };
  ports: StagePorts;
  options: StageOptions;
}

/** What an executor needs besides the instruction; one per stage run. */

export function createdTime(options: Pick<StageOptions, 'sourceDateEpoch' | 'now'>): string {
  const d = options.sourceDateEpoch !== undefined ? new Date(options.sourceDateEpoch * 1000) : (options.now ?? (() => new Date()))();
  // RFC 3339 as Go writes it: no fractional part when it is zero.
  return d.toISOString().replace('.000Z', 'Z');
}

/**
 * Builds one stage. With a step cache, each step's key is computed first and a hit restores the
 * step's layer and config change without running it. The rootfs is prepared only when a step has
 * to run (from the base and the layers restored so far); a stage whose steps all hit never
 * prepares one unless a later stage reads it (`ensureRootfs`). The returned `release` frees the
 * rootfs when the whole build is done; on failure it is released here.
 */
export async function buildStage(req: BuildStageRequest): Promise<StageResult & { rootfs?: StageRootfs; release(): Promise<void> }> {
  const { stage, ports, options } = req;
  const signal = options.signal;
  signal.throwIfAborted();
  options.onEvent?.({ type: 'stage-start', stage: stage.index, ...(stage.name ? { name: stage.name } : {}), base: baseLabel(req) });

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

  // The rootfs holds the base plus every layer in `draft` when prepared; a cache hit after it was
  // prepared drops it, and the next step that runs prepares it again with the restored layer.
  let rootfs: StageRootfs | undefined;
  const held: StageRootfs[] = [];
  // --isolation=none: the rootfs is the one shared build root, prepared straight from the layer
  // blobs, held only while this stage runs; later readers get a tree extracted from its layers.
  const shared = isSharedRoot(ports.snapshotter) ? ports.snapshotter : undefined;
  const extracted: ExtractedTree[] = [];
  const ensureRootfs = async (layers: readonly Layer[], sig: AbortSignal): Promise<StageRootfs> => {
    if (rootfs) {
      await rootfs.ready(sig);
      return rootfs;
    }
    if (shared) {
      rootfs = await shared.prepareFromLayers({ layers, signal: sig });
      held.push(rootfs);
      return rootfs;
    }
    // Unpacked once per machine (the store single-flights per diffId), all layers at once.
    const lowers: UnpackedLayer[] = await Promise.all(layers.map((layer) => ports.unpacked.ensureUnpacked(layer, sig)));
    rootfs = await ports.snapshotter.prepare({ lowers, signal: sig });
    held.push(rootfs);
    return rootfs;
  };
  const releaseAll = async () => {
    for (const r of held.splice(0).reverse()) await r.release().catch(() => undefined);
    for (const t of extracted.splice(0)) await t.release().catch(() => undefined);
  };

  // --single-snapshot: a step's cache entry would restore no layer while its changes live only in
  // the rootfs, so such a stage runs without the step cache (the executor says so).
  const cache = options.singleSnapshot ? undefined : req.cache;
  const deferredSnapshot: DeferredSnapshot = { pending: false, ignores: [] };
  let parentKey: string | undefined = cache ? baseParent(cache.base) : undefined;
  try {
    const created = createdTime(options);
    let lastCreated: string | undefined;
    const instructions = [...req.onbuildTriggers, ...stage.instructions];
    const lastFilesystemIndex = instructions.findLastIndex((i) => touchesFilesystem(i));
    for (const [index, instr] of instructions.entries()) {
      signal.throwIfAborted();
      const line = instr.range.start.line;
      options.onEvent?.({ type: 'step-start', stage: stage.index, line, text: instr.original });
      const fs = touchesFilesystem(instr);
      let key: string | undefined;
      if (cache && parentKey !== undefined) {
        const inputs = fs ? await collectStepInputs(instr, state, { context: ports.context, stageResults: ports.stageResults, images: ports.images, platform: options.platform, signal }) : {};
        if (inputs !== 'uncacheable') {
          key = stepKey({
            parent: parentKey,
            instruction: instr,
            state,
            platform: options.platform,
            runtime: { network: options.network, hostname: options.buildArgs['BUILDKIT_SANDBOX_HOSTNAME'] || 'buildkitsandbox' },
            sourceDateEpoch: options.sourceDateEpoch,
            inputs,
          });
        }
      }
      const acquired = cache && key !== undefined ? await cache.port.acquire(key, signal) : undefined;
      let out: StepOutcome;
      let stepCreated = created;
      if (acquired && 'hit' in acquired) {
        const hit = acquired.hit;
        out = restoreOutcome(instr, state, hit, options.platform);
        stepCreated = hit.entry.created;
        // The prepared rootfs lacks this layer: prepare a fresh one when a step next runs (the
        // shared build root is given back first: it is prepared again from the layers).
        if (rootfs && hit.layer) {
          if (shared) await rootfs.release();
          rootfs = undefined;
        }
        options.onEvent?.({ type: 'cache-hit', stage: stage.index, line, key: key!, source: hit.source });
      } else {
        const miss = acquired && 'miss' in acquired ? acquired.miss : undefined;
        try {
          if (fs) {
            const env: StepEnvironment = { rootfs: await ensureRootfs(draft.layers, signal), dockerfilePath: req.dockerfilePath, stageIndex: stage.index, escape, ports, options, lastFilesystemStep: index === lastFilesystemIndex, deferredSnapshot };
            out = await executeInstruction(instr, state, draft.config, env);
          } else {
            out = executeMetadataInstruction(instr, state, options.platform);
          }
        } catch (e) {
          miss?.abandon();
          throw withLocation(e, { file: req.dockerfilePath, range: instr.range });
        }
        if (miss && key !== undefined) await miss.record(entryOf(key, out, created, options.now), out.layer);
      }
      // An uncacheable step (ADD <url>) chains its successors from what it produced.
      if (cache) parentKey = key ?? (parentKey !== undefined ? outputKey(parentKey, out.layer?.diffId) : undefined);
      state = out.state;
      let next = draft.config;
      if (out.configPatch && Object.keys(out.configPatch).length > 0) next = patchConfig(next, out.configPatch);
      if (out.author !== undefined) next = patchImageConfig(next, { author: out.author });
      draft = { config: next, layers: draft.layers };
      if (out.layer) {
        const history: HistoryEntry = { created: stepCreated, created_by: out.history?.createdBy ?? instr.original, comment: HISTORY_COMMENT };
        draft = appendLayer(draft, out.layer, history);
        lastCreated = stepCreated;
      } else if (out.history) {
        draft = { config: appendHistory(draft.config, { created: stepCreated, created_by: out.history.createdBy, comment: HISTORY_COMMENT }), layers: draft.layers };
        lastCreated = stepCreated;
      }
      options.onEvent?.({ type: 'step-done', stage: stage.index, line, ...(out.layer ? { layer: out.layer.descriptor.digest } : {}), ...(acquired && 'hit' in acquired ? { cached: true } : {}) });
    }
    // --single-snapshot whose last filesystem step took no snapshot (WORKDIR /): the deferred
    // changes are taken now, as one layer at the end of the stage's history.
    if (deferredSnapshot.pending && rootfs) {
      const layer = await snapshotLayer({ rootfs, ports, options, deferredSnapshot }, { ignore: [], final: true });
      draft = appendLayer(draft, layer, { created, created_by: SINGLE_SNAPSHOT_HISTORY, comment: HISTORY_COMMENT });
      lastCreated = created;
    }
    // A stage whose last writing step made no snapshot (WORKDIR /) may leave the previous one's
    // remount running; its readers (COPY --from) need the mount back, and its failure must count.
    await rootfs?.settle();
    // The image is as new as its newest step, so a rebuild whose steps all hit has the same digest.
    const imageCreated = options.sourceDateEpoch !== undefined ? created : (lastCreated ?? created);
    const platformFields: Partial<ImageConfig> = { created: imageCreated, architecture: options.platform.architecture, os: options.platform.os, variant: options.platform.variant };
    const image = imageFromParts({ config: finalizeConfig(patchImageConfig(draft.config, platformFields)), layers: draft.layers, format: 'oci' });
    options.onEvent?.({ type: 'stage-done', stage: stage.index, digest: image.digest });
    const finalLayers = draft.layers;
    if (shared) {
      // The next stage needs the root; readers of this one get its layers in a private tree. A
      // root that holds exactly the final layers is parked: a `FROM <this stage>` continues in it.
      const last = rootfs;
      for (const r of held.splice(0).reverse()) {
        if (r === last) await shared.park(r, finalLayers);
        else await r.release();
      }
      let tree: Promise<ExtractedTree> | undefined;
      const extractOnce = (sig: AbortSignal): Promise<ExtractedTree> =>
        (tree ??= shared.extractTree({ layers: finalLayers, signal: sig }).then((t) => (extracted.push(t), t)));
      return {
        image,
        ensureRootfs: async (sig: AbortSignal) => (await extractOnce(sig)).path,
        finalState: state,
        ...(stage.name !== undefined ? { name: stage.name } : {}),
        ...(cache ? { cacheKey: stageFinalKey(cache.base, parentKey === baseParent(cache.base) ? undefined : parentKey) } : {}),
        release: releaseAll,
      };
    }
    const finalRootfs = rootfs as StageRootfs | undefined;
    let finalPrepared: Promise<StageRootfs> | undefined; // one rootfs however many stages read it
    return {
      image,
      ...(finalRootfs ? { rootfsDir: finalRootfs.path, rootfs: finalRootfs } : { ensureRootfs: async (sig: AbortSignal) => (await (finalPrepared ??= ensureRootfs(finalLayers, sig))).path }),
      finalState: state,
      ...(stage.name !== undefined ? { name: stage.name } : {}),
      ...(cache ? { cacheKey: stageFinalKey(cache.base, parentKey === baseParent(cache.base) ? undefined : parentKey) } : {}),
      release: releaseAll,
    };
  } catch (e) {
    await releaseAll();
    throw e;
  }
}

/** What a cache hit stands for: the stored layer and history, the state computed as the step would. */
function restoreOutcome(instr: Instruction, state: StageState, hit: StepCacheHit, platform: Platform): StepOutcome {
  const e = hit.entry;
  // Config-only steps and WORKDIR's config change are pure: recomputing gives the next state.
  const meta = touchesFilesystem(instr) && instr.kind !== 'workdir' ? undefined : executeMetadataInstruction(instr, state, platform);
  const configPatch = decodeConfigPatch(e.configPatch);
  return {
    state: meta?.state ?? state,
    ...(configPatch ? { configPatch } : {}),
    ...(e.author !== undefined ? { author: e.author } : {}),
    ...(e.history ? { history: e.history } : {}),
    ...(hit.layer ? { layer: hit.layer } : {}),
  };
}

function entryOf(key: string, out: StepOutcome, created: string, now: (() => Date) | undefined): StepCacheEntry {
  const configPatch = encodeConfigPatch(out.configPatch);
  return {
    version: CACHE_KEY_VERSION,
    key,
    ...(out.layer ? { layer: { descriptor: out.layer.descriptor, diffId: out.layer.diffId } } : {}),
    ...(configPatch ? { configPatch } : {}),
    ...(out.author !== undefined ? { author: out.author } : {}),
    ...(out.history ? { history: out.history } : {}),
    created,
    writtenAt: (now ?? (() => new Date()))().toISOString(),
  };
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

/** History of a --single-snapshot layer taken after the stage's last step rather than by it. */
export const SINGLE_SNAPSHOT_HISTORY = 'single snapshot of the stage (--single-snapshot)';

function baseLabel(req: BuildStageRequest): string {
  const from = req.stage.from;
  return from.image ?? 'scratch';
}
