import type { Layer } from '../../image/blob.js';
import type { StepEnvironment } from './types.js';

/**
 * Snapshot what the step changed and write it as one deterministic layer into the store. Called for
 * every filesystem step even when nothing changed: BuildKit gives every RUN/COPY/ADD a layer.
 */
export async function commitLayer(env: StepEnvironment, options: { ignore?: string[] } = {}): Promise<Layer> {
  const { signal, sourceDateEpoch } = env.options;
  const changes = await env.rootfs.snapshot({ ...(options.ignore ? { ignore: options.ignore } : {}), final: env.lastFilesystemStep, signal });
  return env.ports.layerWriter.writeLayer(changes, { ...(sourceDateEpoch !== undefined ? { clampMtime: sourceDateEpoch } : {}), signal });
}
