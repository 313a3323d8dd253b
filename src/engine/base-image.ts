/**
 * Resolves what a stage starts from (DOCKERFILE.md A9, A20): `scratch` (an empty image whose config
 * is PATH + WorkingDir "/"), an earlier stage of the same Dockerfile (its built result and ARGs), or
 * an external image through an `ImageSource` (the registry puller, or a local image the caller
 * supplies for image-to-image dependencies). ONBUILD triggers of the base are returned parsed, to
 * run right after FROM; the stage runner clears them from the config so grandchildren don't re-run
 * them.
 */
import type { Image } from '../image/blob.js';
import { emptyImageConfig } from '../image/mutate.js';
import { imageFromParts } from '../image/image.js';
import type { Platform } from '../image/types.js';
import type { Instruction } from '../dockerfile/types.js';
import { parseTriggers } from '../dockerfile/onbuild-triggers.js';
import type { ImageSource, StageResult } from './instructions/types.js';

export type StageBase = { kind: 'scratch' } | { kind: 'stage'; index: number } | { kind: 'image'; ref: string };

export interface ResolvedBase {
  image: Image;
  /** Stage-env state of the base stage (FROM <stage> inherits its ARGs). */
  inheritedState?: unknown;
  /** ONBUILD triggers of the base, parsed, in registration order. */
  triggers: Instruction[];
  /** Shown in progress output. */
  label: string;
}

export function scratchImage(platform: Platform): Image {
  return imageFromParts({ config: emptyImageConfig(platform), layers: [], format: 'oci' });
}

export async function resolveBase(options: {
  base: StageBase;
  platform: Platform;
  stageResults: ReadonlyMap<number, StageResult>;
  images: ImageSource;
  signal: AbortSignal;
}): Promise<ResolvedBase> {
  const { base } = options;
  switch (base.kind) {
    case 'scratch':
      return { image: scratchImage(options.platform), triggers: [], label: 'scratch' };
    case 'stage': {
      const r = options.stageResults.get(base.index);
      if (!r) throw new Error(`stage ${base.index} must be built before the stages that use it`);
      return {
        image: r.image,
        ...(r.finalState !== undefined ? { inheritedState: r.finalState } : {}),
        triggers: parseTriggers(r.image.config.config?.OnBuild ?? [], `stage ${r.name ?? base.index}`),
        label: r.name ?? `stage ${base.index}`,
      };
    }
    case 'image': {
      const image = await options.images.resolve(base.ref, options.platform, options.signal);
      return { image, triggers: parseTriggers(image.config.config?.OnBuild ?? [], base.ref), label: base.ref };
    }
    default: {
      const never: never = base;
      throw new Error(`unknown base ${JSON.stringify(never)}`);
    }
  }
}

export { parseTriggers };
