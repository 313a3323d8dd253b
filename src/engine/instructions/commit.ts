import type { Layer } from '../../image/blob.js';
import type { StepEnvironment } from './types.js';
import type { StepOutcome } from './outcome.js';

/**
 * Snapshot what the step changed and write it as one deterministic layer into the store. Called for
 * every filesystem step even when nothing changed: BuildKit gives every RUN/COPY/ADD a layer.
 *
 * With `--single-snapshot` (Kaniko's flag) only the stage's last filesystem step snapshots; the
 * steps before it return no layer and their changes stay in the rootfs, so that one snapshot holds
 * the whole stage's change (a file made and deleted within the stage is in no layer at all). Their
 * ignore paths (RUN --mount targets) are kept for it.
 */
export async function commitLayer(env: StepEnvironment, options: { ignore?: string[] } = {}): Promise<Layer | undefined> {
  const deferred = env.deferredSnapshot;
  if (env.options.singleSnapshot && !env.lastFilesystemStep) {
    deferred.pending = true;
    deferred.ignores.push(...(options.ignore ?? []));
    return undefined;
  }
  return snapshotLayer(env, { ignore: options.ignore ?? [], final: env.lastFilesystemStep });
}

/**
 * The snapshot of `env.rootfs` (leaving out `ignore` and what deferred steps left out) written as a
 * layer; whatever --single-snapshot deferred is in it. Also what the stage runner calls when a
 * stage's last filesystem step took no snapshot.
 */
export async function snapshotLayer(env: Pick<StepEnvironment, 'rootfs' | 'ports' | 'options' | 'deferredSnapshot'>, o: { ignore: readonly string[]; final: boolean }): Promise<Layer> {
  const { signal, sourceDateEpoch } = env.options;
  const deferred = env.deferredSnapshot;
  const ignore = [...deferred.ignores, ...o.ignore];
  const changes = await env.rootfs.snapshot({ ...(ignore.length > 0 ? { ignore } : {}), final: o.final, signal });
  deferred.pending = false;
  return env.ports.layerWriter.writeLayer(changes, { ...(sourceDateEpoch !== undefined ? { clampMtime: sourceDateEpoch } : {}), signal });
}

/** A filesystem step's outcome parts: its layer, if it took one, and a history entry that says so. */
export function layerOutcome(layer: Layer | undefined, createdBy: string): Pick<StepOutcome, 'layer' | 'history'> {
  return layer ? { layer, history: { createdBy, emptyLayer: false } } : { history: { createdBy, emptyLayer: true } };
}
