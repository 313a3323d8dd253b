/**
 * Per-step cache status for a compiled build graph (`stowage plan`): walks every image's stages in
 * build order with `planStageKeys`, sharing results per vertex (a vertex is the same stage
 * whichever image uses it). I/O comes in through ports: the build context of an image, the local
 * index lookup and, optionally (`plan --resolve`), the resolution of external base images. With
 * that port and images of the spec resolved too (`stowage build`), the walk also gives each image's
 * final key (`createImageKeyPlanner`).
 */
import type { ParsedDockerfile } from '../graph/compile.js';
import type { BuildGraph } from '../graph/types.js';
import { parsePlatform } from '../image/platform.js';
import { emptyImageConfig } from '../image/mutate.js';
import type { BuildSpec } from '../spec/types.js';
import type { ContainerConfig, Platform } from '../image/types.js';
import type { ContextSources, OpenedContext } from './ports.js';
import { planStageKeys, type PlannedStage, type PlannedStep } from './plan-keys.js';

export interface PlanCachePorts {
  /** Opens an image's build context (for content digests); closed by the caller's `close`. */
  openContext(contextDir: string, dockerfilePath: string): Promise<OpenedContext>;
  peek(key: string): Promise<boolean>;
  /**
   * Resolves `FROM <image>` to its digest and config (`stowage plan --resolve`: the registry);
   * absent, or undefined for a ref: not known, so the stage's steps have no key ('unknown').
   */
  resolveImage?(ref: string, platform: Platform, signal: AbortSignal): Promise<ResolvedBase | undefined>;
  sourceDateEpoch?: number;
  signal: AbortSignal;
}

/** An external base image as key material: its manifest digest and its container config. */
export interface ResolvedBase {
  digest: string;
  config: ContainerConfig;
}

export interface ImageKeyPorts extends PlanCachePorts {
  /** Resolves `FROM <image>` (a registry, with the local store); undefined: not known, no key. */
  resolveImage(ref: string, platform: Platform, signal: AbortSignal): Promise<ResolvedBase | undefined>;
  /** An image of this spec that a stage builds on, once this run has it; undefined: no key. */
  resolveSpecImage(name: string): ResolvedBase | undefined;
}

/** Vertex id → its steps' cache status (FROM excluded), in step order. */
export type PlanCacheStatus = Map<string, PlannedStep[]>;

export async function planCacheStatus(graph: BuildGraph, spec: BuildSpec, dockerfiles: ReadonlyMap<string, ParsedDockerfile>, ports: PlanCachePorts): Promise<PlanCacheStatus> {
  const byId = new Map(graph.vertices.map((v) => [v.id, v]));
  const specImages = new Map(spec.images.map((i) => [i.name, i]));
  const planned = new Map<string, PlannedStage>();
  const contexts = new Map<string, Promise<OpenedContext>>();
  try {
    for (const img of graph.images) {
      const specImage = specImages.get(img.name);
      const parsed = specImage ? dockerfiles.get(specImage.dockerfile)?.dockerfile : undefined;
      if (!specImage || !parsed) continue;
      const ctxKey = `${specImage.context}\0${specImage.dockerfile}`;
      // Opened only when a step with a known parent reads it (most stages have an external base).
      const open = (): Promise<OpenedContext> => {
        let ctx = contexts.get(ctxKey);
        if (!ctx) {
          ctx = ports.openContext(specImage.context, specImage.dockerfile);
          contexts.set(ctxKey, ctx);
        }
        return ctx;
      };
      const context: ContextSources = {
        resolveSources: async (patterns, o) => (await open()).resolveSources(patterns, o),
        fileDigests: async (paths, signal) => (await open()).fileDigests(paths, signal),
      };
      const stages = new Map<number, { name?: string; cacheKey?: string }>();
      const targetName = specImage.target !== undefined ? parsed.stages[byId.get(img.target)?.stage.index ?? -1]?.name : undefined;
      for (const id of img.stages) {
        const v = byId.get(id)!;
        let result = planned.get(id);
        if (!result) {
          const baseStage = v.base.kind === 'vertex' && v.base.image === undefined ? planned.get(v.base.vertex) : undefined;
          const external = v.base.kind === 'image' && ports.resolveImage ? await ports.resolveImage(v.base.ref, parsePlatform(v.platform), ports.signal) : undefined;
          const base =
            v.base.kind === 'scratch'
              ? { identity: { kind: 'scratch' as const }, config: emptyImageConfig(parsePlatform(v.platform)).config ?? {} }
              : external
                ? { identity: { kind: 'image' as const, digest: external.digest }, config: external.config }
                : baseStage?.finalKey !== undefined
                  ? { identity: { kind: 'stage' as const, key: baseStage.finalKey }, config: baseStage.finalConfig, inherited: baseStage.finalState }
                  : undefined;
          result = await planStageKeys({
            dockerfile: parsed,
            stageIndex: v.stage.index,
            buildArgs: specImage.args,
            platform: parsePlatform(v.platform),
            ...(targetName !== undefined ? { targetStage: targetName } : {}),
            base,
            stages,
            context,
            ...(ports.sourceDateEpoch !== undefined ? { sourceDateEpoch: ports.sourceDateEpoch } : {}),
            peek: ports.peek,
            signal: ports.signal,
          });
          planned.set(id, result);
        }
        stages.set(v.stage.index, { ...(v.stage.name !== undefined ? { name: v.stage.name } : {}), ...(result.finalKey !== undefined ? { cacheKey: result.finalKey } : {}) });
      }
    }
  } finally {
    for (const c of contexts.values()) await c.then((x) => x.close()).catch(() => undefined);
  }
  return new Map([...planned].map(([id, r]) => [id, r.steps]));
}

/**
 * Final keys of images, computed on demand and shared per vertex: the key of an image's target
 * stage, derived exactly as the stage runner derives it (same walk, same `stepKey`), with external
 * bases resolved to their digest. Undefined when any step's key depends on what only a build knows
 * (an image of this spec, `--from=<image>`, ADD <url>). The caller owns the contexts it opens.
 */
export interface ImageKeyPlanner {
  /** The target stage's final key and the number of steps the image's stages run (ONBUILD triggers included). */
  finalKey(imageName: string): Promise<{ key: string; steps: number } | undefined>;
}

export function createImageKeyPlanner(graph: BuildGraph, spec: BuildSpec, dockerfiles: ReadonlyMap<string, ParsedDockerfile>, ports: ImageKeyPorts): ImageKeyPlanner {
  const byId = new Map(graph.vertices.map((v) => [v.id, v]));
  const images = new Map(graph.images.map((i) => [i.name, i]));
  const specImages = new Map(spec.images.map((i) => [i.name, i]));
  /** Per vertex and per image context: a vertex shared by images of different contexts reads each. */
  const planned = new Map<string, Promise<PlannedStage | undefined>>();

  const planVertex = (imageName: string, vertexId: string, stages: ReadonlyMap<number, { name?: string; cacheKey?: string }>, context: ContextSources, ctxKey: string): Promise<PlannedStage | undefined> => {
    const memoKey = `${vertexId}\0${ctxKey}`;
    let p = planned.get(memoKey);
    if (p) return p;
    p = (async () => {
      const v = byId.get(vertexId)!;
      const specImage = specImages.get(imageName)!;
      const parsed = dockerfiles.get(specImage.dockerfile)?.dockerfile;
      if (!parsed) return undefined;
      const platform = parsePlatform(v.platform);
      let base: Parameters<typeof planStageKeys>[0]['base'];
      switch (v.base.kind) {
        case 'scratch':
          base = { identity: { kind: 'scratch' }, config: emptyImageConfig(platform).config ?? {} };
          break;
        case 'vertex': {
          if (v.base.image !== undefined) {
            // An image of this spec: the stage runner keys on the built image's digest, as for any image.
            const built = ports.resolveSpecImage(v.base.image);
            if (!built) return undefined;
            base = { identity: { kind: 'image', digest: built.digest }, config: built.config };
            break;
          }
          const baseStage = await planVertex(imageName, v.base.vertex, stages, context, ctxKey);
          if (baseStage?.finalKey === undefined) return undefined;
          base = { identity: { kind: 'stage', key: baseStage.finalKey }, config: baseStage.finalConfig, inherited: baseStage.finalState };
          break;
        }
        case 'image': {
          const resolved = await ports.resolveImage(v.base.ref, platform, ports.signal);
          if (!resolved) return undefined;
          base = { identity: { kind: 'image', digest: resolved.digest }, config: resolved.config };
          break;
        }
      }
      const image = images.get(imageName)!;
      const targetName = specImage.target !== undefined ? parsed.stages[byId.get(image.target)?.stage.index ?? -1]?.name : undefined;
      return planStageKeys({
        dockerfile: parsed,
        stageIndex: v.stage.index,
        buildArgs: specImage.args,
        platform,
        ...(targetName !== undefined ? { targetStage: targetName } : {}),
        base,
        stages,
        context,
        ...(ports.sourceDateEpoch !== undefined ? { sourceDateEpoch: ports.sourceDateEpoch } : {}),
        peek: ports.peek,
        signal: ports.signal,
      });
    })();
    planned.set(memoKey, p);
    return p;
  };

  return {
    async finalKey(imageName) {
      const image = images.get(imageName);
      const specImage = specImages.get(imageName);
      if (!image || !specImage) return undefined;
      const ctxKey = `${specImage.context}\0${specImage.dockerfile}`;
      let opened: Promise<OpenedContext> | undefined;
      const open = () => (opened ??= ports.openContext(specImage.context, specImage.dockerfile));
      const context: ContextSources = {
        resolveSources: async (patterns, o) => (await open()).resolveSources(patterns, o),
        fileDigests: async (paths, signal) => (await open()).fileDigests(paths, signal),
      };
      // Earlier stages in build order, as the stage runner sees them (for COPY --from=<stage>).
      const stages = new Map<number, { name?: string; cacheKey?: string }>();
      let last: PlannedStage | undefined;
      let steps = 0;
      for (const id of image.stages) {
        const v = byId.get(id)!;
        last = await planVertex(imageName, id, stages, context, ctxKey);
        if (last?.finalKey === undefined) return undefined;
        steps += last.steps.length;
        stages.set(v.stage.index, { ...(v.stage.name !== undefined ? { name: v.stage.name } : {}), cacheKey: last.finalKey });
      }
      // The stages are in build order, the target last.
      return last?.finalKey === undefined ? undefined : { key: last.finalKey, steps };
    },
  };
}
