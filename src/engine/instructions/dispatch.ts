/**
 * One switch over every instruction kind: metadata instructions go through the front end's pure
 * stage-env step; those that touch the filesystem have their own executor file.
 */
import type { Instruction } from '../../dockerfile/types.js';
import { applyMetadataInstruction, type StageState } from '../../dockerfile/stage-env.js';
import type { ImageConfig } from '../../image/types.js';
import { assertNever } from '../../util/errors.js';
import type { StepEnvironment } from './types.js';
import type { StepOutcome } from './outcome.js';
import { executeRun } from './run.js';
import { executeCopy } from './copy.js';
import { executeAdd } from './add.js';
import { executeWorkdir } from './workdir.js';

/** Instructions whose executor works on the stage's rootfs. */
export function touchesFilesystem(instr: Instruction): boolean {
  return instr.kind === 'run' || instr.kind === 'copy' || instr.kind === 'add' || instr.kind === 'workdir';
}

export async function executeInstruction(instr: Instruction, state: StageState, config: ImageConfig, env: StepEnvironment): Promise<StepOutcome> {
  switch (instr.kind) {
    case 'run':
      return executeRun(instr, state, config, env);
    case 'copy':
      return executeCopy(instr, state, config, env);
    case 'add':
      return executeAdd(instr, state, config, env);
    case 'workdir':
      return executeWorkdir(instr, state, config, env);
    case 'env':
    case 'arg':
    case 'label':
    case 'user':
    case 'expose':
    case 'volume':
    case 'cmd':
    case 'entrypoint':
    case 'shell':
    case 'stopsignal':
    case 'healthcheck':
    case 'onbuild':
    case 'maintainer':
      return executeMetadataInstruction(instr, state, env.options.platform);
    case 'from':
      // FROM is consumed by the stage analysis; a stage's instruction list never contains one.
      throw new Error('FROM inside a stage body');
    default:
      return assertNever(instr, 'instruction');
  }
}

/** Instructions that change only the config: pure, no rootfs needed (the step cache restores them without one). */
export function executeMetadataInstruction(instr: Instruction, state: StageState, platform: StepEnvironment['options']['platform']): StepOutcome {
  const r = applyMetadataInstruction(state, instr, { platform });
  return {
    state: r.state,
    configPatch: r.configPatch,
    ...(r.author !== undefined ? { author: r.author } : {}),
    ...(r.createdBy !== undefined ? { history: { createdBy: r.createdBy, emptyLayer: r.emptyLayer ?? true } } : {}),
  };
}
