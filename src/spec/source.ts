/** Looking up where an image's field was written, for diagnostics about it (lint, planner). */
import type { SourceLocation, SpecImage } from './types.js';

/**
 * The location of `field` (a dotted path such as `args.FOO`, `destinations.1`, `target`), falling
 * back to its parent field and finally to the image itself, so there is always somewhere to point.
 */
export function fieldLocation(image: Pick<SpecImage, 'source'>, field: string): SourceLocation {
  const parts = field.split('.');
  for (let n = parts.length; n > 0; n--) {
    const hit = image.source.fields[parts.slice(0, n).join('.')];
    if (hit) return hit;
  }
  return image.source.image;
}
