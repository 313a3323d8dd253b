/**
 * Step keys as `stowage plan` can know them without building or any network: the same walk the
 * stage runner does (same state evolution, same `stepKey`), for stages whose base is known offline
 * — `FROM scratch` and chains of such stages. A step is 'unknown' when its key depends on something
 * only a build knows: an external base image's digest, an image of this spec not built yet, an
 * `--from=<image>`, or an earlier step whose key depends on its output (ADD <url>). Known keys are
 * looked up in the local index (a port) as 'hit' or 'miss'.
 */
import type { Dockerfile, Instruction } from '../dockerfile/types.js';
import { applyMetadataInstruction, initialStageState, stageStartConfigPatch, type StageState } from '../dockerfile/stage-env.js';
import { emptyImageConfig } from '../image/mutate.js';
import type { ContainerConfig, Platform } from '../image/types.js';
import type { ContextSources } from './ports.js';
import { parseTriggers } from '../dockerfile/onbuild-triggers.js';
import { collectStepInputs } from './inputs.js';
import { baseParent, stageFinalKey, stepKey, type BaseIdentity } from './keys.js';

export type PlannedStatus = 'hit' | 'miss' | 'unknown';

export interface PlannedStep {
  line: number;
  status: PlannedStatus;
  key?: string;
}

export interface PlannedStage {
  steps: PlannedStep[];
  /** Present when every step's key is known. */
  finalKey?: string;
  finalState: StageState;
  finalConfig: ContainerConfig;
}

export interface PlanStageRequest {
  dockerfile: Dockerfile;
  stageIndex: number;
  buildArgs: Readonly<Record<string, string>>;
  platform: Platform;
  targetStage?: string;
  /** undefined: the base is not known offline (an external image); every key is unknown. */
  base: { identity: BaseIdentity; config: ContainerConfig; inherited?: StageState } | undefined;
  /** Earlier stages of this Dockerfile as planned (for COPY --from and RUN --mount from=). */
  stages: ReadonlyMap<number, { name?: string; cacheKey?: string }>;
  context: ContextSources;
  sourceDateEpoch?: number;
  /** Is this key in the local index? */
  peek(key: string): Promise<boolean>;
  signal: AbortSignal;
}

export async function planStageKeys(req: PlanStageRequest): Promise<PlannedStage> {
  const stage = req.dockerfile.stages[req.stageIndex]!;
  const baseConfig = req.base ? { ...emptyImageConfig(req.platform), config: req.base.config } : emptyImageConfig(req.platform);
  let state = initialStageState({
    baseConfig,
    ...(req.base?.inherited !== undefined ? { inherited: req.base.inherited } : {}),
    buildArgs: req.buildArgs,
    platform: req.platform,
    metaArgs: req.dockerfile.metaArgs,
    stage,
    escape: req.dockerfile.directives.escape,
    ...(req.targetStage !== undefined ? { targetStage: req.targetStage } : {}),
  });
  let config: ContainerConfig = { ...(baseConfig.config ?? {}), ...stageStartConfigPatch(state) };
  const triggers = req.base ? parseTriggers(req.base.config.OnBuild ?? [], `stage ${req.stageIndex}`) : [];
  let parent: string | undefined = req.base ? baseParent(req.base.identity) : undefined;
  const steps: PlannedStep[] = [];
  const instructions: Instruction[] = [...triggers, ...stage.instructions];
  for (const instr of instructions) {
    let key: string | undefined;
    if (parent !== undefined) {
      const inputs = await collectStepInputs(instr, state, {
        context: req.context,
        stageResults: req.stages,
        images: { resolve: () => Promise.reject(new Error('not known offline')) },
        platform: req.platform,
        signal: req.signal,
      });
      if (inputs !== 'uncacheable') {
        key = stepKey({
          parent,
          instruction: instr,
          state,
          platform: req.platform,
          runtime: { network: 'default', hostname: req.buildArgs['BUILDKIT_SANDBOX_HOSTNAME'] || 'buildkitsandbox' },
          sourceDateEpoch: req.sourceDateEpoch,
          inputs,
        });
      }
    }
    steps.push(key === undefined ? { line: instr.range.start.line, status: 'unknown' } : { line: instr.range.start.line, status: (await req.peek(key)) ? 'hit' : 'miss', key });
    parent = key;
    // The state moves as in the stage runner: RUN/COPY/ADD leave it, the rest are the pure step.
    if (instr.kind !== 'run' && instr.kind !== 'copy' && instr.kind !== 'add') {
      try {
        const r = applyMetadataInstruction(state, instr, { platform: req.platform });
        state = r.state;
        if (r.configPatch) config = { ...config, ...r.configPatch };
      } catch {
        parent = undefined; // the build will fail here; nothing after it has a key
      }
    }
  }
  const lastKey = instructions.length === 0 ? undefined : parent;
  const allKnown = req.base !== undefined && (instructions.length === 0 || lastKey !== undefined);
  return {
    steps,
    ...(allKnown ? { finalKey: stageFinalKey(req.base!.identity, lastKey) } : {}),
    finalState: state,
    finalConfig: config,
  };
}
