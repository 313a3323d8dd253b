/**
 * The RUN sandbox: `runStep` (one step in a rootfs), `createSandbox` (the port the stage runner
 * holds, with the isolation chosen once), `detectIsolation`, RUN --mount mapping and the RUN argv.
 */
import { runStep } from './run-step.js';
import type { Isolation, RunStepOptions, RunStepResult } from './types.js';

export { runStep, bwrapArgs, envPairs, DOCKER_DEFAULT_CAPS } from './run-step.js';
export { detectIsolation, createIsolationDetector, type IsolationChoice, type IsolationDetector } from './detect.js';
export { mapRunMounts, cacheMountDir, type MappedRunMounts, type RunMountContext, type SecretsProvider } from './run-mounts.js';
export { runCommandArgv, type RunCommandInput, type RunCommandPlan } from './run-command.js';
export { resolveInRoot, cleanContainerPath } from './in-root.js';
export type { Isolation, NetworkMode, RunStepOptions, RunStepResult, SandboxMount, SandboxUser, HostTools } from './types.js';

export interface Sandbox {
  readonly isolation: Isolation;
  runStep(options: Omit<RunStepOptions, 'isolation'>): Promise<RunStepResult>;
}

/** A sandbox bound to one isolation mode (pick it with `detectIsolation` or from the CLI flag). */
export function createSandbox(options: { isolation: Isolation; tools?: RunStepOptions['tools'] }): Sandbox {
  return {
    isolation: options.isolation,
    runStep: (o) => runStep({ ...o, isolation: options.isolation, ...(options.tools ? { tools: options.tools } : {}) }),
  };
}
