/**
 * Per-step cache status for a compiled build graph (`stowage plan`): walks every image's stages in
 * build order with `planStageKeys`, sharing results per vertex (a vertex is the same stage
 * whichever image uses it). I/O comes in through ports: the build context of an image and the
 * local index lookup.
 */
import type { ParsedDockerfile } from '../graph/compile.js';
import type { BuildGraph } from '../graph/types.js';
import { parsePlatform } from '../image/platform.js';
import { emptyImageConfig } from '../image/mutate.js';
import type { BuildSpec } from '../spec/types.js';
import type { BuildContext } from '../engine/context/context.js';
import { planStageKeys, type PlannedStage, type PlannedStep } from './plan-keys.js';

export interface PlanCachePorts {
  /** Opens an image's build context (for content digests); closed by the caller's `close`. */
  openContext(contextDir: string, dockerfilePath: string): Promise<BuildContext>;
  peek(key: string): Promise<boolean>;
  sourceDateEpoch?: number;
  signal: AbortSignal;
}

/** Vertex id → its steps' cache status (FROM excluded), in step order. */
export type PlanCacheStatus = Map<string, PlannedStep[]>;

export async function planCacheStatus(graph: BuildGraph, spec: BuildSpec, dockerfiles: ReadonlyMap<string, ParsedDockerfile>, ports: PlanCachePorts): Promise<PlanCacheStatus> {
  const byId = new Map(graph.vertices.map((v) => [v.id, v]));
  const specImages = new Map(spec.images.map((i) => [i.name, i]));
  const planned = new Map<string, PlannedStage>();
  const contexts = new Map<string, Promise<BuildContext>>();
  try {
    for (const img of graph.images) {
      const specImage = specImages.get(img.name);
      const parsed = specImage ? dockerfiles.get(specImage.dockerfile)?.dockerfile : undefined;
      if (!specImage || !parsed) continue;
      const ctxKey = `${specImage.context}\0${specImage.dockerfile}`;
      // Opened only when a step with a known parent reads it (most stages have an external base).
      const open = (): Promise<BuildContext> => {
        let ctx = contexts.get(ctxKey);
        if (!ctx) {
          ctx = ports.openContext(specImage.context, specImage.dockerfile);
          contexts.set(ctxKey, ctx);
        }
        return ctx;
      };
      const context: Pick<BuildContext, 'resolveSources' | 'fileDigests'> = {
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
          const base =
            v.base.kind === 'scratch'
              ? { identity: { kind: 'scratch' as const }, config: emptyImageConfig(parsePlatform(v.platform)).config ?? {} }
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
