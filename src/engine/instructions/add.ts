/**
 * ADD: COPY plus local archives unpacked by content and http(s) URL sources (A10). The file
 * operations live in engine/copy; this file only decides the inputs and commits the layer.
 */
import type { AddInstruction } from '../../dockerfile/types.js';
import { historyFor, type StageState } from '../../dockerfile/stage-env.js';
import type { ImageConfig } from '../../image/types.js';
import type { StepEnvironment } from './types.js';
import { commitLayer, layerOutcome } from './commit.js';
import { copyFiles } from './copy.js';
import type { StepOutcome } from './outcome.js';
import { withLocation } from './located.js';

export async function executeAdd(instr: AddInstruction, state: StageState, config: ImageConfig, env: StepEnvironment): Promise<StepOutcome> {
  try {
    await copyFiles(instr, state, config, env, { unpackArchives: true });
  } catch (e) {
    throw withLocation(e, { file: env.dockerfilePath, range: instr.range });
  }
  const layer = await commitLayer(env);
  return { state, ...layerOutcome(layer, historyFor(instr, state)) };
}
