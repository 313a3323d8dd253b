/** Which images a command acts on: names, group names, matrix family names and globs. */
import type { Diagnostic } from '../util/errors.js';
import { didYouMean } from '../util/levenshtein.js';
import { isGlob, matchGlob } from './glob.js';
import type { BuildSpec } from './types.js';

export interface Selection {
  /** Sorted, unique image names. */
  images: string[];
  diagnostics: Diagnostic[];
}

export function selectImages(spec: BuildSpec, patterns: string[]): Selection {
  const all = spec.images.map((i) => i.name);
  if (patterns.length === 0) return { images: all, diagnostics: [] };
  const known = new Set(all);
  const chosen = new Set<string>();
  const diagnostics: Diagnostic[] = [];
  for (const p of patterns) {
    if (isGlob(p)) {
      const hits = matchGlob(p, all);
      if (hits.length === 0) diagnostics.push({ severity: 'error', code: 'select/no-match', message: `'${p}' matches no image`, hint: `images: ${preview(all)}` });
      hits.forEach((h) => chosen.add(h));
    } else if (known.has(p)) {
      chosen.add(p);
    } else if (Object.hasOwn(spec.groups, p)) {
      spec.groups[p]!.forEach((h) => chosen.add(h));
    } else if (Object.hasOwn(spec.families, p)) {
      spec.families[p]!.forEach((h) => chosen.add(h));
    } else {
      const guess = didYouMean(p, [...all, ...Object.keys(spec.groups), ...Object.keys(spec.families)]);
      diagnostics.push({ severity: 'error', code: 'select/unknown', message: `'${p}' is neither an image nor a group in ${spec.file}`, hint: guess ? `did you mean '${guess}'?` : `images: ${preview(all)}` });
    }
  }
  return { images: [...chosen].sort(), diagnostics };
}

function preview(names: string[]): string {
  return names.length <= 10 ? names.join(', ') : `${names.slice(0, 10).join(', ')}, … (${names.length} in all)`;
}
