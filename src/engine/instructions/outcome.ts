import type { Layer } from '../../image/blob.js';
import type { ContainerConfig } from '../../image/types.js';
import type { StageState } from '../../dockerfile/stage-env.js';

/** What one instruction did; the stage runner folds these into the image config. */
export interface StepOutcome {
  state: StageState;
  configPatch?: Partial<ContainerConfig>;
  /** MAINTAINER sets the image's top-level `author`. */
  author?: string;
  /** Absent for instructions BuildKit writes no history for (ONBUILD, ARG without effect…). */
  history?: { createdBy: string; emptyLayer: boolean };
  /** Present exactly when `history.emptyLayer` is false. */
  layer?: Layer;
}
